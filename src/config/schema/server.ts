import { Type } from 'typebox';

/** Generations in flight for an engine that does not say what it can run (maxInFlight unset). */
export const DEFAULT_MAX_IN_FLIGHT = 4;

/** Config fields: Where glimpse listens, which engine it runs, and the limits on what is in flight, queued and accepted. */
export const serverFields = {
  host: Type.String({
    default: '127.0.0.1',
    description: 'Address to bind. Anything but loopback needs API keys or --allow-public-without-auth.',
  }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  workers: Type.Union([Type.Integer({ minimum: 1, maximum: 256 }), Type.Literal('auto')], {
    default: 1,
    description:
      "HTTP server processes sharing the one port (Node cluster), so request handling uses more than one core; auto = one per CPU core. They share nothing but Redis (--redis-url): without it the answer cache, quotas, stored responses and the queue are per process. The embedded engine's model stays in one process (the primary), which every worker asks over IPC.",
  }),
  engine: Type.Enum(['embedded', 'upstream', 'simulated'], { default: 'embedded' }),
  modelPath: Type.String({
    default: 'HuggingFaceTB/SmolVLM-256M-Instruct',
    description:
      'Hugging Face model id, local directory or profile name (glm-ocr, smolvlm, qwen2.5-vl-3b) for the embedded engine; also read as model (--model, GLIMPSE_MODEL).',
  }),
  modelName: Type.Optional(
    Type.String({
      description: 'Name the model is served under (defaults to the last part of modelPath or upstreamModel).',
    }),
  ),
  upstream: Type.Array(Type.String(), {
    default: [],
    description: 'OpenAI-compatible base URLs, e.g. http://gpu1:8000/v1.',
  }),
  upstreamModel: Type.Optional(
    Type.String({
      description:
        "Model name to ask upstreams for (e.g. zai-org/GLM-4.6V-Flash). Unset: each upstream's /models is read and the models they serve are served under their own names (modelName, when set, names the first of them too).",
    }),
  ),
  upstreamRoutes: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), {
    default: {},
    description:
      'More models from other upstream pools, beside the primary (--upstream): model name => base URLs joined by |, e.g. glm-4.6v=http://gpu3:8000/v1|http://gpu4:8000/v1. Requests naming that model go to that pool; its servers serve it under that name.',
  }),
  upstreamApiKey: Type.Optional(Type.String({ description: 'Bearer token sent to upstreams.' })),
  device: Type.Enum(['cpu', 'cuda', 'auto'], { default: 'auto' }),
  maxInFlight: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description: `Generations in flight at once in this process. Engines that know their capacity (upstream pools: each replica's limit; the embedded engine: its workers) are admitted up to it, and this is an optional ceiling over them; for engines that do not say (simulated) it is the limit, ${DEFAULT_MAX_IN_FLIGHT} when unset.`,
    }),
  ),
  maxBatchSize: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description:
        'Deprecated old name of maxInFlight (--max-batch-size, GLIMPSE_MAX_BATCH_SIZE); still read, with a warning.',
    }),
  ),
  maxQueue: Type.Integer({
    minimum: 0,
    maximum: 100000,
    default: 64,
    description: 'Requests waiting beyond what can run at once.',
  }),
  queueTimeout: Type.Number({
    exclusiveMinimum: 0,
    default: 60,
    description: 'Seconds a request may wait in the queue.',
  }),
  maxContextLength: Type.Integer({ minimum: 16, maximum: 10_000_000, default: 8192 }),
  maxTokensLimit: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 8192,
    description: 'Largest max_tokens a client may ask for.',
  }),
  maxPromptChars: Type.Integer({
    minimum: 1,
    default: 100_000,
    description: 'Characters in one text field (prompt, message).',
  }),
  maxMessages: Type.Integer({ minimum: 1, default: 256, description: 'Messages in one chat request.' }),
  maxJsonDepth: Type.Integer({
    minimum: 4,
    maximum: 1000,
    default: 64,
    description:
      'Levels of objects and arrays in a JSON request body or WebSocket message (tool parameters and JSON schemas included); a deeper one is refused before anything reads it.',
  }),
};
