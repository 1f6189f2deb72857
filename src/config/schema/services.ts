import { Type } from 'typebox';

/** Config fields: Answer cache, stored responses, quotas, async jobs, batches, moderation, Redis and the simulated engine. */
export const servicesFields = {
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
      maxCompletionWindowSeconds: Type.Integer({
        minimum: 1,
        maximum: 30 * 86_400,
        default: 86_400,
        description:
          'Longest completion_window a batch may ask for ("24h", OpenAI\'s only value, is 86400 s; glimpse also takes "90m", "2s"). A batch still running when its window ends is expired: its unrun requests go to the error file as batch_expired.',
      }),
      finalizeGraceSeconds: Type.Integer({
        minimum: 1,
        default: 300,
        description:
          'A batch in finalizing this long (its output files not written: the instance writing them died) is finalized again by any instance.',
      }),
      fileTtlSeconds: Type.Integer({
        minimum: 1,
        default: 30 * 86_400,
        description:
          "Seconds an uploaded file, or a batch's output or error file, is kept after it is written (OpenAI's default for batch files: 30 days); shown as the file's expires_at.",
      }),
      sweepSeconds: Type.Integer({
        minimum: 1,
        maximum: 3600,
        default: 30,
        description:
          'How often each instance looks for batches past their completion window or stuck in finalizing, and (embedded store) files and batches past their TTL. A worker picking up a line of a batch past its window expires it at once whatever this is.',
      }),
      batchTtlSeconds: Type.Integer({
        minimum: 1,
        default: 30 * 86_400,
        description: 'Seconds a batch is kept (GET /v1/batches/{id}) after it ended: completed, expired or cancelled.',
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
};
