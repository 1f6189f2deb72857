import { Type, type Static } from 'typebox';

/** Generations in flight for an engine that does not say what it can run (maxInFlight unset). */
export const DEFAULT_MAX_IN_FLIGHT = 4;

/**
 * One validated config object. Every field can come from a CLI flag, an environment variable
 * (GLIMPSE_<UPPER_SNAKE>), or a config file (YAML/JSON), in that order of precedence, over the
 * defaults below. Every limit lives here with its default.
 */
export const ConfigSchema = Type.Object({
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
  apiKeys: Type.Array(Type.String(), {
    default: [],
    description: 'API keys, each `name:secret` or `secret`; when any is set, model routes need one.',
  }),
  apiKeysFile: Type.Optional(Type.String({ description: 'File with one API key (`name:secret`) a line.' })),
  apiKeysReloadSeconds: Type.Number({
    minimum: 0,
    // Timers cannot wait longer (Node would fire them at once instead).
    maximum: 2_147_483,
    default: 10,
    description:
      'Seconds between re-reads of the API keys file, so rotated keys (a rewritten file, a changed Kubernetes Secret) apply without a restart; SIGHUP re-reads at once; 0: only on SIGHUP.',
  }),
  apiKeyJwt: Type.Object(
    {
      clockSkewSeconds: Type.Integer({
        minimum: 0,
        maximum: 3600,
        default: 30,
        description:
          "Seconds a JWT signed from an `id.secret` API key (Zhipu's SDKs) may be past its exp, or issued ahead of this server's clock.",
      }),
      maxLifetimeSeconds: Type.Integer({
        minimum: 1,
        maximum: 86_400 * 30,
        default: 3600,
        description: 'Longest a JWT may be valid for, from its timestamp (issue time) to its exp.',
      }),
    },
    { default: {} },
  ),
  trustProxy: Type.Array(Type.String(), {
    default: [],
    description:
      "Addresses or CIDR ranges of the proxies in front (e.g. 127.0.0.1 for nginx on the same host) whose X-Forwarded-For and X-Forwarded-Proto are believed, so logs show the client's address. Empty: the connecting peer is the client.",
  }),
  corsOrigins: Type.Array(
    Type.String({
      pattern: '^https?://(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$',
      errorMessage:
        'must be an origin, scheme://host[:port] with no path and no trailing slash (e.g. https://app.example.com); for any origin use --cors-any-origin',
    }),
    {
      default: [],
      description:
        'Origins whose browser pages may call the API (CORS), e.g. https://app.example.com,https://b.example.com. Empty (the default): pages on other origins are refused by their browsers.',
    },
  ),
  corsAnyOrigin: Type.Boolean({
    default: false,
    description:
      'Let a page on any origin call the API (Access-Control-Allow-Origin: *). Credentials (cookies) are never allowed; API keys still apply.',
  }),
  corsMaxAge: Type.Integer({
    minimum: 0,
    maximum: 86_400,
    default: 600,
    description: 'Seconds a browser may reuse a preflight answer (Chromium caps this at 7200).',
  }),
  redact: Type.Array(Type.Enum(['pii', 'id_card', 'bank_card', 'phone', 'email']), {
    default: [],
    description:
      'Personal data to mask in answers, streamed or not: pii (all of them) or a list of id_card (mainland ID numbers, check digit validated; first 6 and last 4 kept), bank_card (Luhn; first 6 and last 4 kept), phone (mainland mobile numbers: 138****8000), email. Empty: nothing is masked.',
  }),
  redactPrompts: Type.Boolean({
    default: false,
    description: 'Also mask the --redact kinds in the text of requests before an engine (an upstream) sees them.',
  }),
  allowPublicWithoutAuth: Type.Boolean({
    default: false,
    description: 'Allow binding a non-loopback address without API keys.',
  }),
  defaultMaxTokens: Type.Integer({ minimum: 1, default: 512 }),
  requestTimeout: Type.Number({ exclusiveMinimum: 0, default: 300, description: 'Total seconds per request.' }),
  idleTimeout: Type.Number({ exclusiveMinimum: 0, default: 60, description: 'Seconds allowed between two tokens.' }),
  streamIntervalMs: Type.Number({
    minimum: 0,
    maximum: 1000,
    default: 20,
    description:
      'Tokens the embedded engine makes within this many ms of the last piece it sent go out together (the first token never waits); 0 sends every token on its own. When tokens come faster than anyone reads, fewer larger pieces spare the CPU that generation needs.',
  }),
  heartbeatInterval: Type.Number({
    exclusiveMinimum: 0,
    default: 15,
    description: 'Seconds between SSE comment heartbeats.',
  }),
  graceShutdownSeconds: Type.Number({
    minimum: 0,
    default: 25,
    description:
      'On SIGTERM: seconds in-flight requests may finish before they are cancelled with a shutting_down error (under the 30 s Kubernetes gives by default before SIGKILL, so the cancel events still go out).',
  }),
  wsPingInterval: Type.Number({
    exclusiveMinimum: 0,
    default: 30,
    description: 'Seconds between WebSocket pings; a peer that missed the previous pong is dropped.',
  }),
  wsMaxBufferedBytes: Type.Integer({
    minimum: 1024,
    default: 1024 * 1024,
    description: 'Bytes queued to a slow WebSocket client before glimpse stops pulling tokens for it.',
  }),
  wsMaxRequestsPerConnection: Type.Integer({
    minimum: 1,
    default: 8,
    description: 'Requests one WebSocket connection may have running or queued at once.',
  }),
  upstreamThinkingParam: Type.Enum(['both', 'chat_template_kwargs', 'thinking', 'none'], {
    default: 'both',
    description:
      "How a client's choice to turn thinking on or off reaches upstream servers: chat_template_kwargs.enable_thinking (vLLM, SGLang), thinking.type (Zhipu's API), both (the default; each server ignores the field it does not know), or none. Nothing is sent when the client did not choose.",
  }),
  upstreamHealthInterval: Type.Number({
    minimum: 0,
    default: 10,
    description:
      'Seconds between active health checks (GET /models, which also tells the models each serves) of each upstream; 0 turns them off (one check at start).',
  }),
  upstreamLimits: Type.Record(Type.String({ minLength: 1 }), Type.Integer({ minimum: 1, maximum: 1_000_000 }), {
    default: {},
    description:
      'Requests one upstream replica may have at once, by its base URL (as given in upstream, upstreamRoutes or fallbackUpstream), e.g. {"http://gpu1:8000/v1": 64}; also `#max=64` on the URL itself. Replicas not listed learn their limit from their /metrics, or adaptively.',
  }),
  upstreamMetricsInterval: Type.Number({
    minimum: 0,
    maximum: 3600,
    default: 1,
    description:
      "Seconds between reads of each upstream replica's /metrics (vLLM's num_requests_running/waiting, SGLang's num_running_reqs/num_queue_reqs), from which its limit is learned; 0: never read (adaptive limits from latency only).",
  }),
  upstreamInitialLimit: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 8,
    description: 'Requests an upstream replica without a set limit may have at once before its limit is learned.',
  }),
  upstreamMaxLimit: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 1024,
    description: 'Highest limit learning may give one upstream replica.',
  }),
  upstreamAffinity: Type.Boolean({
    default: true,
    description:
      'Send a request whose image was seen recently to the replica that saw it (its encoder and prefix caches hit), within a bounded load; false: route by load only.',
  }),
  upstreamAffinityLoadFactor: Type.Number({
    minimum: 1,
    maximum: 100,
    default: 1.25,
    description:
      'How far over its fair share of the outstanding requests (by limit) a replica may go to keep an image it saw: 1.25 = 25 % over. Lower spreads a hot image sooner.',
  }),
  upstreamAffinityEntries: Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    default: 10_000,
    description:
      'Image fingerprints remembered per pool with the replica that saw them (least recently used go first).',
  }),
  upstreamBreakerThreshold: Type.Integer({
    minimum: 1,
    default: 3,
    description: 'Consecutive failures that eject an upstream (circuit open).',
  }),
  upstreamBreakerCooldown: Type.Number({
    exclusiveMinimum: 0,
    default: 5,
    description: 'Seconds an ejected upstream rests before one half-open probe request may try it.',
  }),
  upstreamRetries: Type.Integer({
    minimum: 0,
    maximum: 10,
    default: 2,
    description:
      'Extra attempts on connect errors, 429/5xx and empty streams, only while nothing has reached the client.',
  }),
  upstreamRetryBackoffMs: Type.Integer({
    minimum: 0,
    default: 100,
    description: 'Base of the jittered exponential backoff between upstream attempts (ms).',
  }),
  upstreamConnectTimeout: Type.Number({
    exclusiveMinimum: 0,
    default: 10,
    description: 'Seconds to connect to an upstream before trying another.',
  }),
  upstreamHeadersTimeout: Type.Number({
    exclusiveMinimum: 0,
    default: 15,
    description:
      "Seconds to wait for an upstream's response headers (vLLM sends them before prefill) before trying another.",
  }),
  fallbackModels: Type.Array(Type.String(), {
    default: [],
    description: 'Upstream model names tried in order when the primary model fails on every upstream (same pool).',
  }),
  fallbackUpstream: Type.Array(Type.String(), {
    default: [],
    description:
      'Base URLs of a second OpenAI-compatible pool (e.g. a cloud API) tried after the primary pool and fallback models.',
  }),
  fallbackUpstreamModel: Type.Optional(
    Type.String({ description: 'Model name to ask the fallback pool for (defaults to upstreamModel).' }),
  ),
  fallbackUpstreamApiKey: Type.Optional(Type.String({ description: 'Bearer token for the fallback pool.' })),
  degradedAnswer: Type.Optional(
    Type.String({
      description:
        'Answer sent as a normal completion (logged as degraded and counted) when the engine is down or failed before the first token, instead of an error. Unset: the error is sent.',
    }),
  ),
  bodyLimit: Type.Integer({ minimum: 1024, default: 20 * 1024 * 1024, description: 'Bytes per request body.' }),
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
  images: Type.Object(
    {
      maxBytes: Type.Integer({
        minimum: 1,
        default: 10 * 1024 * 1024,
        description: 'Largest encoded image in bytes (upload, decoded base64, or fetched body).',
      }),
      maxPixels: Type.Integer({
        minimum: 1,
        default: 50_000_000,
        description: 'Largest width x height, read from the image header before decoding (stops decompression bombs).',
      }),
      maxAspectRatio: Type.Number({
        minimum: 1,
        default: 200,
        description:
          'Longest over shortest side, from the header. Extreme strips (1,000,000 x 20) cost gigabytes to resize and carry nothing a model can see.',
      }),
      maxImagesPerRequest: Type.Integer({ minimum: 0, default: 8, description: 'Images one request may carry.' }),
      maxBase64Length: Type.Integer({
        minimum: 4,
        default: Math.ceil((10 * 1024 * 1024) / 3) * 4,
        description: 'Longest base64 text (data URL payload or bare base64), checked before decoding it.',
      }),
      patchMultiple: Type.Integer({
        minimum: 1,
        maximum: 1024,
        default: 28,
        description:
          "The model's pixel unit: image sides are multiples of it (GLM-4.6V: 14 px patches merged 2x2 = 28), and each unit squared is one image token in usage.",
      }),
      maxEdge: Type.Integer({
        minimum: 16,
        maximum: 16384,
        default: 1024,
        description: 'Images are shrunk (never enlarged) so their longest edge is at most this many pixels.',
      }),
      maxEdgeByModel: Type.Record(Type.String({ minLength: 1 }), Type.Integer({ minimum: 16, maximum: 16384 }), {
        default: {},
        description:
          'Model profiles: the longest edge for images sent to a model, by the model id requests name (e.g. {"Qwen2-VL-2B-Instruct": 448}); models not listed use maxEdge. As a flag or env value: id=px,id=px.',
      }),
      maxConcurrentDecodes: Type.Integer({
        minimum: 0,
        maximum: 1024,
        default: 0,
        description:
          'Images normalized at the same time across all requests; others wait their turn (0 = one per CPU core).',
      }),
      decodeTimeoutSeconds: Type.Integer({
        minimum: 0,
        maximum: 600,
        default: 10,
        description: 'Seconds one image may spend decoding and resizing before it is refused (0 = no limit).',
      }),
      outputFormat: Type.Enum(['jpeg', 'png', 'webp'], {
        default: 'jpeg',
        description: 'Encoding of the normalized image handed to engines.',
      }),
      outputQuality: Type.Integer({
        minimum: 1,
        maximum: 100,
        default: 90,
        description: 'Quality of the normalized image when the encoding is lossy.',
      }),
      fetchTimeoutMs: Type.Integer({
        minimum: 1,
        default: 10_000,
        description: 'Total time allowed to fetch one image URL, redirects and body included.',
      }),
      maxRedirects: Type.Integer({
        minimum: 0,
        maximum: 10,
        default: 3,
        description: 'Redirects followed when fetching an image URL; each is checked again.',
      }),
      allowDomains: Type.Array(Type.String(), {
        default: [],
        description: 'When not empty, image URLs must be on one of these domains (or their subdomains).',
      }),
      denyDomains: Type.Array(Type.String(), {
        default: [],
        description: 'Image URLs on these domains (or their subdomains) are refused.',
      }),
      allowPrivateNetworks: Type.Boolean({
        default: false,
        description:
          'Let image URLs reach loopback, private (RFC 1918), CGNAT and IPv6 unique-local addresses, for storage on your own network. Link-local (cloud metadata) stays refused.',
      }),
    },
    { default: {} },
  ),
  documents: Type.Object(
    {
      maxBytes: Type.Integer({
        minimum: 1,
        default: 50 * 1024 * 1024,
        description: 'Largest document in bytes (PDF or Office file: upload, decoded base64, or fetched body).',
      }),
      maxPages: Type.Integer({
        minimum: 1,
        maximum: 10_000,
        default: 64,
        description:
          'Pages one document may have; a longer one is refused (its page count is read before any page is rendered).',
      }),
      totalPixels: Type.Integer({
        minimum: 784,
        default: 16_384 * 784,
        description:
          "Pixels shared by a document's pages (GLM-V style budget): each page gets totalPixels / pages, within minPagePixels..maxPagePixels, so a long document fits the model's context.",
      }),
      maxPagePixels: Type.Integer({
        minimum: 784,
        default: 1024 * 1024,
        description: 'Most pixels one rendered page gets, however short the document.',
      }),
      minPagePixels: Type.Integer({
        minimum: 784,
        default: 256 * 256,
        description: 'Fewest pixels one rendered page gets, however long the document (text below this is unreadable).',
      }),
      maxPageInches: Type.Number({
        minimum: 1,
        default: 100,
        description: 'Longest page side in inches; a larger page (PDF allows 200 x 200) is refused before rendering.',
      }),
      renderTimeoutSeconds: Type.Integer({
        minimum: 1,
        maximum: 600,
        default: 30,
        description:
          "Seconds one document's pages may take to render before the render is stopped and the document refused.",
      }),
      maxConcurrentRenders: Type.Integer({
        minimum: 0,
        maximum: 64,
        default: 0,
        description:
          'Documents rendered at the same time, each on its own thread; others wait their turn (0 = half the CPU cores, at least one).',
      }),
      conversionTimeoutSeconds: Type.Integer({
        minimum: 1,
        maximum: 600,
        default: 60,
        description: 'Seconds LibreOffice may take to turn one Office file into PDF; conversions run one at a time.',
      }),
      maxUnpackedBytes: Type.Integer({
        minimum: 1,
        default: 200 * 1024 * 1024,
        description:
          'Office files are zip archives: the most their entries may claim to unpack to (stops zip bombs before LibreOffice opens them).',
      }),
      libreOffice: Type.String({
        default: 'soffice',
        description: 'LibreOffice program used to convert Office files (found on PATH unless a path is given).',
      }),
    },
    { default: {} },
  ),
  video: Type.Object(
    {
      maxBytes: Type.Integer({
        minimum: 1,
        default: 100 * 1024 * 1024,
        description: 'Largest video in bytes (upload, decoded base64, or fetched body).',
      }),
      maxDurationSeconds: Type.Number({
        minimum: 1,
        default: 3600,
        description: 'Longest video, read from its header before decoding.',
      }),
      maxPixels: Type.Integer({
        minimum: 1,
        default: 3840 * 2160,
        description: 'Largest frame width x height, read from the header before decoding (8K is refused by default).',
      }),
      maxFrames: Type.Integer({
        minimum: 1,
        maximum: 1024,
        default: 64,
        description:
          'Most frames sampled from one video (GLM-4.6V: about 3 fps to 30 s, 1 fps to 300 s, 0.5 fps after, then thinned to this many).',
      }),
      totalPixels: Type.Integer({
        minimum: 784,
        default: 16_384 * 784,
        description:
          "Pixels shared by a video's frames: each frame gets totalPixels / frames, within the documents' min/max page pixels.",
      }),
      decodeTimeoutSeconds: Type.Integer({
        minimum: 1,
        maximum: 600,
        default: 30,
        description: 'Seconds ffmpeg may take to sample one video before it is stopped and the video refused.',
      }),
      upstreamPassthrough: Type.Boolean({
        default: false,
        description:
          'The upstream pool serves video (vLLM or SGLang with GLM-4.6V): send videos whole as video_url parts instead of sampled frames.',
      }),
      ffmpeg: Type.String({
        default: 'ffmpeg',
        description: 'ffmpeg program (found on PATH unless a path is given); ffprobe is looked for beside it.',
      }),
    },
    { default: {} },
  ),
  cache: Type.Object(
    {
      enabled: Type.Boolean({ default: true, description: 'Reuse answers to repeated deterministic requests.' }),
      maxBytes: Type.Integer({
        minimum: 0,
        default: 64 * 1024 * 1024,
        description: 'Bytes of answers kept in memory (least recently used go first).',
      }),
      ttlSeconds: Type.Integer({
        minimum: 0,
        default: 3600,
        description: 'Seconds an answer stays cached (0 = until evicted).',
      }),
      nearDuplicateDistance: Type.Integer({
        minimum: 0,
        maximum: 64,
        default: 0,
        description:
          'Reuse an answer for images whose 64-bit perceptual hashes differ in at most this many bits (0 = exact matches only).',
      }),
      cacheNondeterministic: Type.Boolean({
        default: false,
        description: 'Also cache requests that sample (temperature > 0 without a fixed seed).',
      }),
    },
    { default: {} },
  ),
  responses: Type.Object(
    {
      store: Type.Boolean({
        default: true,
        description:
          "Keep Responses API answers (store: true, the API's default) for previous_response_id, GET /v1/responses/{id} and its input_items; false keeps none.",
      }),
      maxBytes: Type.Integer({
        minimum: 1,
        default: 64 * 1024 * 1024,
        description:
          'Bytes of stored responses kept in memory (least recently used go first; one response may take a quarter at most). With --redis-url they live in Redis instead.',
      }),
      ttlSeconds: Type.Integer({
        minimum: 0,
        default: 86400,
        description: 'Seconds a stored response is kept after it was last used (0 = until evicted).',
      }),
    },
    { default: {} },
  ),
  quotas: Type.Object(
    {
      requestsPerMinute: Type.Integer({
        minimum: 0,
        default: 0,
        description:
          'Requests one API key may start per minute (0 = no limit). Needs API keys; shared across instances with --redis-url.',
      }),
      tokensPerMinute: Type.Integer({
        minimum: 0,
        default: 0,
        description:
          'Prompt plus completion tokens one API key may use per minute; once spent, its requests are refused until the minute turns (0 = no limit).',
      }),
      byKey: Type.Record(
        Type.String({ minLength: 1 }),
        Type.Object(
          {
            requestsPerMinute: Type.Optional(Type.Integer({ minimum: 0 })),
            tokensPerMinute: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        {
          default: {},
          description:
            'Limits for particular keys by key name, over the two above (config file), e.g. {"batch": {"requestsPerMinute": 600}}.',
        },
      ),
    },
    { default: {} },
  ),
  jobs: Type.Object(
    {
      workers: Type.Integer({
        minimum: 0,
        maximum: 256,
        default: 1,
        description:
          'Async job workers in this instance (0: accept jobs, let other instances run them). Jobs live under --state-dir, or in Redis with --redis-url.',
      }),
      maxQueued: Type.Integer({
        minimum: 1,
        default: 10_000,
        description: 'Jobs waiting or running across all instances before new ones get 429 queue_full.',
      }),
      resultTtlSeconds: Type.Integer({
        minimum: 1,
        default: 86_400,
        description: 'Seconds a finished job (its answer or error) stays readable.',
      }),
      claimIdleSeconds: Type.Number({
        exclusiveMinimum: 0,
        default: 60,
        description: "Seconds without a sign of life from a job's worker before another instance takes the job over.",
      }),
      maxAttempts: Type.Integer({
        minimum: 1,
        maximum: 100,
        default: 3,
        description: 'Starts a job gets (its worker dying counts) before it fails with job_failed.',
      }),
      interactiveReserve: Type.Integer({
        minimum: 0,
        default: 1,
        description:
          'Engine slots (of what can run at once) async jobs never take, so interactive requests find one free; jobs also wait while any interactive request does. 0: jobs may use every slot.',
      }),
      webhookSecret: Type.Optional(
        Type.String({
          pattern: '^(whsec_)?[A-Za-z0-9+/]{22,}={0,2}$',
          description:
            'Secret that signs job webhooks, as Standard Webhooks libraries take it: base64 of 16+ random bytes, optionally prefixed whsec_ (e.g. `whsec_$(openssl rand -base64 32)`). Unset: deliveries go unsigned.',
        }),
      ),
      webhookAllowPrivateNetworks: Type.Boolean({
        default: false,
        description:
          'Let job webhooks reach loopback and private networks (receivers on your own network). Link-local (cloud metadata) stays refused.',
      }),
      webhookTimeoutMs: Type.Integer({
        minimum: 1,
        maximum: 120_000,
        default: 10_000,
        description: 'Time one webhook delivery attempt may take.',
      }),
      webhookMaxAttempts: Type.Integer({
        minimum: 1,
        maximum: 20,
        default: 5,
        description: 'Delivery attempts per job event; connection errors, timeouts, 408, 429 and 5xx are retried.',
      }),
      webhookBackoffMs: Type.Integer({
        minimum: 0,
        default: 1000,
        description: 'Wait before the second delivery attempt; doubles for each one after.',
      }),
    },
    { default: {} },
  ),
  batches: Type.Object(
    {
      maxFileBytes: Type.Integer({
        minimum: 1024,
        default: 200 * 1024 * 1024,
        description: 'Bytes of one file uploaded to /v1/files (a batch input JSONL).',
      }),
      maxLineBytes: Type.Integer({
        minimum: 1024,
        default: 20 * 1024 * 1024,
        description: 'Bytes of one line (one request) of a batch input file.',
      }),
    },
    { default: {} },
  ),
  moderation: Type.Object(
    {
      url: Type.Optional(
        Type.String({
          description:
            "A moderation service in OpenAI's /v1/moderations shape (e.g. https://api.openai.com/v1/moderations, or one on your own network with allowPrivateNetworks): each request's text is posted to it before an engine sees it, and a flagged one is refused with 400 content_flagged. Unset: no moderation.",
        }),
      ),
      model: Type.Optional(
        Type.String({
          minLength: 1,
          description:
            "Model the moderation service is asked to use (its `model` field, e.g. omni-moderation-latest); unset: the service's default.",
        }),
      ),
      apiKey: Type.Optional(Type.String({ minLength: 1, description: 'Bearer token sent to the moderation service.' })),
      answers: Type.Boolean({
        default: false,
        description:
          'Also check each answer (and its reasoning) once it is complete; a flagged one ends with a content_flagged error instead of finishing (a streamed one after its text was sent).',
      }),
      failMode: Type.Enum(['closed', 'open'], {
        default: 'closed',
        description:
          'When the moderation service cannot answer (down, over timeoutMs, an error status, a body not in its shape): closed refuses the request with 503 moderation_unavailable; open lets it through unchecked (logged and counted).',
      }),
      timeoutMs: Type.Integer({
        minimum: 1,
        maximum: 60_000,
        default: 3000,
        description:
          'Time one moderation check may take, connection included, before it counts as a failure (see failMode).',
      }),
      maxResponseBytes: Type.Integer({
        minimum: 1024,
        maximum: 16 * 1024 * 1024,
        default: 1024 * 1024,
        description: 'Largest moderation answer read; a longer one is a failure.',
      }),
      allowPrivateNetworks: Type.Boolean({
        default: false,
        description:
          'Let the moderation URL reach loopback and private networks (a service on your own network). Link-local (cloud metadata) stays refused.',
      }),
    },
    { default: {} },
  ),
  redisUrl: Type.Optional(
    Type.String({
      description:
        'Redis URL (redis://host:port/db); when set, the answer cache, the quota counters, stored responses, async jobs, batches and their files live there.',
    }),
  ),
  simulated: Type.Object(
    {
      ttftMs: Type.Number({ minimum: 0, default: 200 }),
      tokensPerSecond: Type.Number({ exclusiveMinimum: 0, default: 50 }),
      reasoningTokens: Type.Integer({
        minimum: 0,
        default: 0,
        description: 'Reasoning tokens before the answer (to exercise thinking UIs).',
      }),
      answerTokens: Type.Integer({
        minimum: 1,
        default: 64,
        description: 'Answer length when max_tokens does not cut it first.',
      }),
    },
    { default: {} },
  ),
});

export type Config = Static<typeof ConfigSchema>;
