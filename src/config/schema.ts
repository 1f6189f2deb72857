import { Type, type Static } from 'typebox';

/**
 * One validated config object. Every field can come from a CLI flag, an environment variable
 * (GLIMPSE_<UPPER_SNAKE>), or a config file (YAML/JSON), in that order of precedence, over the
 * defaults below. Every limit lives here with its default.
 */
export const ConfigSchema = Type.Object({
  host: Type.String({ default: '127.0.0.1', description: 'Address to bind. Anything but loopback needs API keys or --allow-public-without-auth.' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  engine: Type.Enum(['embedded', 'upstream', 'simulated'], { default: 'embedded' }),
  modelPath: Type.String({ default: 'HuggingFaceTB/SmolVLM-256M-Instruct', description: 'Hugging Face model id or local directory (embedded engine).' }),
  modelName: Type.Optional(Type.String({ description: 'Name the model is served under (defaults to the last part of modelPath or upstreamModel).' })),
  upstream: Type.Array(Type.String(), { default: [], description: 'OpenAI-compatible base URLs, e.g. http://gpu1:8000/v1.' }),
  upstreamModel: Type.Optional(Type.String({ description: 'Model name to ask upstreams for (e.g. zai-org/GLM-4.6V-Flash).' })),
  upstreamApiKey: Type.Optional(Type.String({ description: 'Bearer token sent to upstreams.' })),
  device: Type.Enum(['cpu', 'cuda', 'auto'], { default: 'auto' }),
  maxBatchSize: Type.Integer({ minimum: 1, maximum: 4096, default: 4, description: 'Generations in flight per engine.' }),
  maxQueue: Type.Integer({ minimum: 0, maximum: 100000, default: 64, description: 'Requests waiting beyond maxBatchSize.' }),
  queueTimeout: Type.Number({ exclusiveMinimum: 0, default: 60, description: 'Seconds a request may wait in the queue.' }),
  maxContextLength: Type.Integer({ minimum: 16, maximum: 10_000_000, default: 8192 }),
  maxTokensLimit: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 8192, description: 'Largest max_tokens a client may ask for.' }),
  maxPromptChars: Type.Integer({ minimum: 1, default: 100_000, description: 'Characters in one text field (prompt, message).' }),
  maxMessages: Type.Integer({ minimum: 1, default: 256, description: 'Messages in one chat request.' }),
  allowPublicWithoutAuth: Type.Boolean({ default: false, description: 'Allow binding a non-loopback address without API keys.' }),
  defaultMaxTokens: Type.Integer({ minimum: 1, default: 512 }),
  requestTimeout: Type.Number({ exclusiveMinimum: 0, default: 300, description: 'Total seconds per request.' }),
  idleTimeout: Type.Number({ exclusiveMinimum: 0, default: 60, description: 'Seconds allowed between two tokens.' }),
  heartbeatInterval: Type.Number({ exclusiveMinimum: 0, default: 15, description: 'Seconds between SSE comment heartbeats.' }),
  bodyLimit: Type.Integer({ minimum: 1024, default: 20 * 1024 * 1024, description: 'Bytes per request body.' }),
  // Embedded engine (transformers.js + onnxruntime-node in worker threads).
  cacheDir: Type.String({ default: '', description: 'Where downloaded models are kept; empty means $XDG_CACHE_HOME/glimpse/models or ~/.cache/glimpse/models.' }),
  offline: Type.Boolean({ default: false, description: 'Never contact the model hub: load only from --model-path directories or the cache.' }),
  hubUrl: Type.String({ default: process.env.HF_ENDPOINT || 'https://huggingface.co', description: 'Hugging Face-compatible hub to download models from (HF_ENDPOINT is honoured too).' }),
  modelRevision: Type.String({ default: 'main', description: 'Branch, tag or commit of the model repository to download.' }),
  dtype: Type.Enum(['auto', 'fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'], {
    default: 'auto',
    description: "Weights to load: auto = what the model's config asks for, else 8-bit quantized (q8) from the hub, else the best file a local directory has.",
  }),
  warmup: Type.Boolean({ default: true, description: 'Run one short generation at start-up before /ready turns 200.' }),
  embeddedWorkers: Type.Integer({ minimum: 1, maximum: 64, default: 1, description: 'Model worker threads, each with its own copy of the model, one generation at a time each.' }),
  embeddedThreads: Type.Integer({ minimum: 0, maximum: 1024, default: 0, description: 'onnxruntime threads per worker; 0 shares the CPU cores evenly between workers.' }),
  logLevel: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  logFormat: Type.Enum(['json', 'pretty'], { default: 'json' }),
  simulated: Type.Object(
    {
      ttftMs: Type.Number({ minimum: 0, default: 200 }),
      tokensPerSecond: Type.Number({ exclusiveMinimum: 0, default: 50 }),
      reasoningTokens: Type.Integer({ minimum: 0, default: 0, description: 'Reasoning tokens before the answer (to exercise thinking UIs).' }),
      answerTokens: Type.Integer({ minimum: 1, default: 64, description: 'Answer length when max_tokens does not cut it first.' }),
    },
    { default: {} },
  ),
});

export type Config = Static<typeof ConfigSchema>;
