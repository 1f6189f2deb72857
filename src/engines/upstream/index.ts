/**
 * Upstream engine: one or more OpenAI-compatible servers (vLLM, SGLang, Ollama, LM Studio,
 * llama-server, Zhipu's cloud API). Streams are passed through chunk by chunk; reasoning
 * (`reasoning_content`, or `reasoning` as newer vLLM names it) and usage are carried.
 *
 * Models: with --upstream-model the pool serves that one name; without it, the names the servers'
 * /models list (read by the health checks), each request going to the servers that serve the
 * model it names.
 *
 * Capacity: the pool's usable members' limits summed (pool.ts, limits.ts), what the scheduler
 * admits against, so excess load waits in glimpse's queue rather than in the servers' own.
 *
 * Reliability: each attempt goes to the replica that saw the request's image or else the least
 * loaded member of a pool (pool.ts); connect errors,
 * 429/5xx, broken and empty streams are retried with jittered backoff, but only while nothing has
 * been yielded (so the client never sees a retry); then the fallback chain (other models, a
 * second pool) is tried; request ids travel to the upstream as X-Request-Id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../config/index.js';
import { servedModelName } from '../../config/index.js';
import {
  GlimpseError,
  type Engine,
  type EngineHealth,
  type GenerateEvent,
  type GenerateRequest,
} from '../../core/index.js';
import type { Logger } from '../../observability/index.js';
import { attempt, type Target } from './attempt.js';
import { imageAffinityKey } from './affinity.js';
import { UpstreamPool, type PoolMember } from './pool.js';
import { toOpenAIRequestBody } from './wire.js';

export { parseSseData } from './sse-parse.js';
export { toOpenAIRequestBody } from './wire.js';
export { CircuitBreaker, type BreakerState } from './breaker.js';
export { UpstreamPool, type PoolMember, type MemberStats } from './pool.js';

export interface UpstreamEngine extends Engine {
  /** Per-member state of every pool, for /health details and metrics. */
  poolStats(): Array<{ pool: string; members: Array<ReturnType<UpstreamPool['stats']>[number] & { note?: string }> }>;
  capacity(model?: string): number;
  onCapacityChange(listener: () => void): () => void;
  affinityKey(req: GenerateRequest): string | undefined;
  home(model: string | undefined, key: string): { id: string; free: number } | undefined;
}

/** The key its replica affinity follows: every image's fingerprint in order (affinity.ts says why not the first only). */
function imageKey(req: GenerateRequest): string | undefined {
  const fingerprints: string[] = [];
  for (const m of req.messages)
    for (const p of m.content) if (p.type === 'image' && p.resolved?.sha256) fingerprints.push(p.resolved.sha256);
  return imageAffinityKey(fingerprints);
}

const unique = (xs: string[]): string[] => [...new Set(xs)];

export function createUpstreamEngine(config: Config, logger: Logger): UpstreamEngine {
  if (!config.upstream.length) {
    throw new GlimpseError(
      'invalid_request',
      'The upstream engine needs at least one base URL: --upstream http://host:8000/v1',
    );
  }
  const model = servedModelName(config);
  const upstreamModel = config.upstreamModel ?? model;
  const pinned = config.upstreamModel !== undefined;
  const poolOptions = (bases: string[], apiKey: string | undefined) =>
    new UpstreamPool({
      bases,
      apiKey,
      limits: config.upstreamLimits,
      metricsIntervalMs: config.upstreamMetricsInterval * 1000,
      initialLimit: config.upstreamInitialLimit,
      maxLimit: config.upstreamMaxLimit,
      ...(config.upstreamAffinity
        ? { affinity: { loadFactor: config.upstreamAffinityLoadFactor, entries: config.upstreamAffinityEntries } }
        : {}),
      breakerThreshold: config.upstreamBreakerThreshold,
      breakerCooldownMs: config.upstreamBreakerCooldown * 1000,
      healthIntervalMs: config.upstreamHealthInterval * 1000,
      connectTimeoutMs: config.upstreamConnectTimeout * 1000,
      headersTimeoutMs: config.upstreamHeadersTimeout * 1000,
      bodyTimeoutMs: config.idleTimeout * 1000,
    });
  const primary = poolOptions(config.upstream, config.upstreamApiKey);
  const fallbackPool = config.fallbackUpstream.length
    ? poolOptions(config.fallbackUpstream, config.fallbackUpstreamApiKey ?? config.upstreamApiKey)
    : undefined;
  /** Models the primary servers list (unpinned), in the order they were found. */
  const discovered = (): string[] => (pinned ? [] : unique(primary.members.flatMap((m) => m.models ?? [])));
  /** Names served: the pinned one; else the discovered ones (modelName naming the first too); the configured name until any is found. */
  const servedNames = (): string[] => {
    const found = discovered();
    if (!found.length) return [model];
    return config.modelName && !found.includes(config.modelName) ? [config.modelName, ...found] : found;
  };
  /** The upstream's name for a model a request names (the served default for an alias or none). */
  const upstreamFor = (requested: string | undefined): string => {
    const found = discovered();
    if (!found.length) return upstreamModel;
    return requested !== undefined && found.includes(requested) ? requested : found[0]!;
  };
  // The chain tried in order: the primary model, other models on the same servers, then the fallback pool.
  const targetsFor = (requested: string): Target[] => {
    const first = upstreamFor(requested);
    return [
      { pool: primary, model: first, label: 'primary' },
      ...config.fallbackModels.map((m) => ({ pool: primary, model: m, label: `fallback model ${m}` })),
      ...(fallbackPool
        ? [{ pool: fallbackPool, model: config.fallbackUpstreamModel ?? first, label: 'fallback pool' }]
        : []),
    ];
  };
  const pools = fallbackPool ? [primary, fallbackPool] : [primary];
  let started = false;

  const backoff = (n: number): number => {
    // Full jitter: spreads the retries of many clients hit by the same failure.
    const cap = Math.min(5000, config.upstreamRetryBackoffMs * 2 ** (n - 1));
    return Math.random() * cap;
  };

  return {
    async start() {
      await Promise.all(pools.map((p) => p.start()));
      started = true;
      if (!pools.some((p) => p.anyUp())) logger.warn({ upstream: config.upstream }, 'no upstream reachable at start');
    },

    async *generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent> {
      let lastError: GlimpseError | undefined;
      let n = 0;
      const image = imageKey(req);
      for (const target of targetsFor(req.model)) {
        const tried = new Set<PoolMember>();
        // Built once per target (the model name is its only difference), not per retry: images make it megabytes.
        let body: string | undefined;
        for (let i = 0; i <= config.upstreamRetries; i++) {
          const member = target.pool.acquire(tried, { model: target.model, image });
          if (!member) {
            lastError ??= new GlimpseError(
              'upstream_unavailable',
              `Every ${target.label} upstream is ejected after repeated failures; retry shortly.`,
              { headers: { 'Retry-After': String(Math.ceil(config.upstreamBreakerCooldown)) } },
            );
            break;
          }
          if (n > 0) {
            try {
              await sleep(backoff(i || 1), undefined, { signal });
            } catch {
              target.pool.release(member, 'neutral');
              yield { type: 'done', finishReason: 'cancelled' };
              return;
            }
          }
          n++;
          tried.add(member);
          body ??= JSON.stringify(toOpenAIRequestBody(req, target.model, config.upstreamThinkingParam));
          const outcome = yield* attempt(member, target, body, req, signal, n);
          if (outcome.kind === 'ok' || outcome.kind === 'final') return;
          if (outcome.kind === 'cancelled') {
            yield { type: 'done', finishReason: 'cancelled' };
            return;
          }
          lastError = outcome.error;
          logger.warn(
            {
              reqId: req.id,
              upstream: member.base,
              target: target.label,
              attempt: n,
              code: outcome.error.code,
              msg: outcome.error.message,
            },
            'upstream attempt failed before the first token; trying again',
          );
        }
      }
      yield {
        type: 'error',
        error: lastError ?? new GlimpseError('upstream_unavailable', 'No upstream could answer.'),
      };
    },

    // OpenAI-compatible servers take tools and response_format; whether the model honours them is theirs to say (vLLM answers 400 without a tool parser).
    supportsTools: true,
    supportsLogprobs: true,
    info: () => ({
      engine: 'upstream',
      model: servedNames()[0]!,
      models: servedNames().map((id) => ({ id, ownedBy: 'upstream' })),
      device: `upstream (${config.upstream.length} server${config.upstream.length > 1 ? 's' : ''})`,
      simulated: false,
    }),
    health: (): EngineHealth => {
      if (!started)
        return { status: 'loading', modelLoaded: false, ready: false, reason: 'Checking upstream servers.' };
      if (pools.some((p) => p.anyUp())) return { status: 'healthy', modelLoaded: true, ready: true };
      const why = primary.members.map((m) => `${m.base}: ${m.lastError ?? m.breaker.current}`).join('; ');
      return { status: 'unhealthy', modelLoaded: false, ready: false, reason: `No upstream is answering (${why}).` };
    },
    // Without a model: the pinned one's servers, or (discovered models) every server. The primary
    // pool's while any of it is up, else the fallback pool's (it takes the traffic then), else 1
    // (requests go on to fail fast, or to the degraded answer, rather than wait).
    capacity: (requested?: string) => {
      const name = requested !== undefined ? upstreamFor(requested) : pinned ? upstreamModel : undefined;
      return primary.capacity(name) || (fallbackPool?.capacity(config.fallbackUpstreamModel ?? name) ?? 0) || 1;
    },
    onCapacityChange(listener) {
      const offs = pools.map((p) => p.onCapacityChange(listener));
      return () => offs.forEach((off) => off());
    },
    affinityKey: imageKey,
    // The primary pool's replica: the fallback pool takes over only when the primary is down.
    home: (requested, key) =>
      primary.home(key, requested !== undefined ? upstreamFor(requested) : pinned ? upstreamModel : undefined),
    poolStats: () =>
      pools.map((p, i) => {
        // A server that lists models, none of them the one this pool asks for, is not used for it: say so.
        const wanted =
          i === 0
            ? pinned
              ? upstreamModel
              : undefined
            : (config.fallbackUpstreamModel ?? (pinned ? upstreamModel : undefined));
        const members = p
          .stats()
          .map((m) =>
            wanted && m.models && !m.models.includes(wanted)
              ? { ...m, note: `serves ${m.models.join(', ') || 'no model'}, not ${wanted}: not used for it` }
              : m,
          );
        return { pool: i === 0 ? 'primary' : 'fallback', members };
      }),
    async close() {
      await Promise.all(pools.map((p) => p.close()));
    },
  };
}
