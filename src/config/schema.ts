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
  graceShutdownSeconds: Type.Number({ minimum: 0, default: 30, description: 'On SIGTERM: seconds in-flight requests may finish before they are cancelled with a shutting_down error.' }),
  wsPingInterval: Type.Number({ exclusiveMinimum: 0, default: 30, description: 'Seconds between WebSocket pings; a peer that missed the previous pong is dropped.' }),
  wsMaxBufferedBytes: Type.Integer({ minimum: 1024, default: 1024 * 1024, description: 'Bytes queued to a slow WebSocket client before glimpse stops pulling tokens for it.' }),
  wsMaxRequestsPerConnection: Type.Integer({ minimum: 1, default: 8, description: 'Requests one WebSocket connection may have running or queued at once.' }),
  upstreamHealthInterval: Type.Number({ minimum: 0, default: 10, description: 'Seconds between active health checks (GET /models) of each upstream; 0 turns them off.' }),
  upstreamBreakerThreshold: Type.Integer({ minimum: 1, default: 3, description: 'Consecutive failures that eject an upstream (circuit open).' }),
  upstreamBreakerCooldown: Type.Number({ exclusiveMinimum: 0, default: 5, description: 'Seconds an ejected upstream rests before one half-open probe request may try it.' }),
  upstreamRetries: Type.Integer({ minimum: 0, maximum: 10, default: 2, description: 'Extra attempts on connect errors, 429/5xx and empty streams, only while nothing has reached the client.' }),
  upstreamRetryBackoffMs: Type.Integer({ minimum: 0, default: 100, description: 'Base of the jittered exponential backoff between upstream attempts (ms).' }),
  upstreamConnectTimeout: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'Seconds to connect to an upstream before trying another.' }),
  upstreamHeadersTimeout: Type.Number({ exclusiveMinimum: 0, default: 15, description: 'Seconds to wait for an upstream\'s response headers (vLLM sends them before prefill) before trying another.' }),
  fallbackModels: Type.Array(Type.String(), { default: [], description: 'Upstream model names tried in order when the primary model fails on every upstream (same pool).' }),
  fallbackUpstream: Type.Array(Type.String(), { default: [], description: 'Base URLs of a second OpenAI-compatible pool (e.g. a cloud API) tried after the primary pool and fallback models.' }),
  fallbackUpstreamModel: Type.Optional(Type.String({ description: 'Model name to ask the fallback pool for (defaults to upstreamModel).' })),
  fallbackUpstreamApiKey: Type.Optional(Type.String({ description: 'Bearer token for the fallback pool.' })),
  degradedAnswer: Type.Optional(Type.String({ description: 'Answer sent as a normal completion (logged as degraded and counted) when the engine is down or failed before the first token, instead of an error. Unset: the error is sent.' })),
  bodyLimit: Type.Integer({ minimum: 1024, default: 20 * 1024 * 1024, description: 'Bytes per request body.' }),
  logLevel: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  logFormat: Type.Enum(['json', 'pretty'], { default: 'json' }),
  images: Type.Object(
    {
      maxBytes: Type.Integer({ minimum: 1, default: 10 * 1024 * 1024, description: 'Largest encoded image in bytes (upload, decoded base64, or fetched body).' }),
      maxPixels: Type.Integer({ minimum: 1, default: 50_000_000, description: 'Largest width x height, read from the image header before decoding (stops decompression bombs).' }),
      maxImagesPerRequest: Type.Integer({ minimum: 0, default: 8, description: 'Images one request may carry.' }),
      maxBase64Length: Type.Integer({ minimum: 4, default: Math.ceil((10 * 1024 * 1024) / 3) * 4, description: 'Longest base64 text (data URL payload or bare base64), checked before decoding it.' }),
      maxEdge: Type.Integer({ minimum: 16, maximum: 16384, default: 1024, description: 'Images are shrunk (never enlarged) so their longest edge is at most this many pixels.' }),
      decodeTimeoutSeconds: Type.Integer({ minimum: 0, maximum: 600, default: 10, description: 'Seconds one image may spend decoding and resizing before it is refused (0 = no limit).' }),
      outputFormat: Type.Enum(['jpeg', 'png', 'webp'], { default: 'jpeg', description: 'Encoding of the normalized image handed to engines.' }),
      outputQuality: Type.Integer({ minimum: 1, maximum: 100, default: 90, description: 'Quality of the normalized image when the encoding is lossy.' }),
      fetchTimeoutMs: Type.Integer({ minimum: 1, default: 10_000, description: 'Total time allowed to fetch one image URL, redirects and body included.' }),
      maxRedirects: Type.Integer({ minimum: 0, maximum: 10, default: 3, description: 'Redirects followed when fetching an image URL; each is checked again.' }),
      allowDomains: Type.Array(Type.String(), { default: [], description: 'When not empty, image URLs must be on one of these domains (or their subdomains).' }),
      denyDomains: Type.Array(Type.String(), { default: [], description: 'Image URLs on these domains (or their subdomains) are refused.' }),
      allowPrivateNetworks: Type.Boolean({ default: false, description: 'Let image URLs reach loopback, private (RFC 1918), CGNAT and IPv6 unique-local addresses, for storage on your own network. Link-local (cloud metadata) stays refused.' }),
    },
    { default: {} },
  ),
  cache: Type.Object(
    {
      enabled: Type.Boolean({ default: true, description: 'Reuse answers to repeated deterministic requests.' }),
      maxBytes: Type.Integer({ minimum: 0, default: 64 * 1024 * 1024, description: 'Bytes of answers kept in memory (least recently used go first).' }),
      ttlSeconds: Type.Integer({ minimum: 0, default: 3600, description: 'Seconds an answer stays cached (0 = until evicted).' }),
      nearDuplicateDistance: Type.Integer({ minimum: 0, maximum: 64, default: 0, description: 'Reuse an answer for images whose 64-bit perceptual hashes differ in at most this many bits (0 = exact matches only).' }),
      cacheNondeterministic: Type.Boolean({ default: false, description: 'Also cache requests that sample (temperature > 0 without a fixed seed).' }),
    },
    { default: {} },
  ),
  redisUrl: Type.Optional(Type.String({ description: 'Redis URL (redis://host:port/db); when set, the answer cache lives there.' })),
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
