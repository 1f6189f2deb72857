import { Type } from 'typebox';

/** Config fields: Upstream pools (routing, limits, breakers, retries), fallbacks, and the request body limit. */
export const upstreamFields = {
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
  upstreamAffinityMaxSkips: Type.Integer({
    minimum: 0,
    maximum: 1000,
    default: 8,
    description:
      "When the pool is full and a slot frees on one replica, a queued request whose image that replica holds is admitted before requests ahead of it whose image's replica is still full; each request is passed over at most this many times (0: strict queue order, affinity only when routing).",
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
};
