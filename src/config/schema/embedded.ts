import { Type } from 'typebox';

/** Config fields: The embedded engine (model download and workers) and logging. */
export const embeddedFields = {
  // Embedded engine (transformers.js + onnxruntime-node in worker threads).
  cacheDir: Type.String({
    default: '',
    description:
      'Where downloaded models are kept; empty means $XDG_CACHE_HOME/glimpse/models or ~/.cache/glimpse/models.',
  }),
  stateDir: Type.String({
    default: '',
    description:
      'Where glimpse keeps what must outlive a restart without Redis (async jobs, batches and their files); empty means $XDG_STATE_HOME/glimpse or ~/.local/state/glimpse. One instance per directory.',
  }),
  offline: Type.Boolean({
    default: false,
    description: 'Never contact the model hub: load only from --model-path directories or the cache.',
  }),
  hubUrl: Type.String({
    default: process.env.HF_ENDPOINT || 'https://huggingface.co',
    description: 'Hugging Face-compatible hub to download models from (HF_ENDPOINT is honoured too).',
  }),
  modelRevision: Type.String({
    default: 'main',
    description: 'Branch, tag or commit of the model repository to download.',
  }),
  dtype: Type.Enum(['auto', 'fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'], {
    default: 'auto',
    description:
      "Weights to load: auto = what the model's config asks for, else 8-bit quantized (q8) from the hub, else the best file a local directory has.",
  }),
  warmup: Type.Boolean({ default: true, description: 'Run one short generation at start-up before /ready turns 200.' }),
  embeddedWorkers: Type.Integer({
    minimum: 1,
    maximum: 64,
    default: 1,
    description: 'Model worker threads, each with its own copy of the model, one generation at a time each.',
  }),
  embeddedVisionBatch: Type.Integer({
    minimum: 0,
    maximum: 64,
    default: 2,
    description:
      'Image tiles per vision-encoder run for models that cut images into tiles (SmolVLM/Idefics3: a 4:3 photo is 13 tiles). Fewer per run means a lower memory peak with the same output; 0 runs every tile at once.',
  }),
  embeddedThreads: Type.Integer({
    minimum: 0,
    maximum: 1024,
    default: 0,
    description: 'onnxruntime threads per worker; 0 shares the CPU cores evenly between workers.',
  }),
  logLevel: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  logFormat: Type.Enum(['json', 'pretty'], { default: 'json' }),
};
