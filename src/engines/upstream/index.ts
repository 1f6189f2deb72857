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
import { request, type Dispatcher } from 'undici';
import type { Config } from '../../config/index.js';
import { servedModelName } from '../../config/index.js';
import {
  GlimpseError,
  type Engine,
  type EngineHealth,
  type GenerateEvent,
  type GenerateRequest,
  type Usage,
  type FinishReason,
} from '../../core/index.js';
import type { Logger } from '../../observability/index.js';
import { UpstreamPool, type PoolMember } from './pool.js';
import { parseSseData } from './sse-parse.js';
import { toOpenAIRequestBody, upstreamHttpError, type UpstreamChunk, type UpstreamToolCallDelta } from './wire.js';

export { parseSseData } from './sse-parse.js';
export { toOpenAIRequestBody } from './wire.js';
export { CircuitBreaker, type BreakerState } from './breaker.js';
export { UpstreamPool, type PoolMember, type MemberStats } from './pool.js';

interface Target {
  pool: UpstreamPool;
  /** Model name sent to this target. */
  model: string;
  label: string;
}

/** How one attempt ended. Only a 'retry' outcome may lead to another attempt. */
type Outcome = { kind: 'ok' } | { kind: 'retry'; error: GlimpseError } | { kind: 'final' } | { kind: 'cancelled' };

export interface UpstreamEngine extends Engine {
  /** Per-member state of every pool, for /health details and metrics. */
  poolStats(): Array<{ pool: string; members: Array<ReturnType<UpstreamPool['stats']>[number] & { note?: string }> }>;
  capacity(model?: string): number;
  onCapacityChange(listener: () => void): () => void;
}

/** The fingerprint of a request's first image: the key its replica affinity follows. */
function imageKey(req: GenerateRequest): string | undefined {
  for (const m of req.messages)
    for (const p of m.content) if (p.type === 'image' && p.resolved?.sha256) return p.resolved.sha256;
  return undefined;
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

  /** One attempt against one member. Yields events; returns how it ended. */
  async function* attempt(
    member: PoolMember,
    target: Target,
    body: string,
    req: GenerateRequest,
    signal: AbortSignal,
    n: number,
  ): AsyncGenerator<GenerateEvent, Outcome> {
    const base = member.base;
    let emitted = 0;
    let verdict: 'success' | 'failure' | 'neutral' = 'neutral';
    // What the replica's limit learns from this attempt: its time to first token under the load it was sent with.
    const sentAt = performance.now();
    const sentWith = member.outstanding;
    let ttftMs: number | undefined;
    let refused = false;
    try {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(`${base}/chat/completions`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'text/event-stream',
            'x-request-id': req.id,
            'x-glimpse-attempt': String(n),
            ...(req.trace
              ? {
                  traceparent: req.trace.traceparent,
                  ...(req.trace.tracestate ? { tracestate: req.trace.tracestate } : {}),
                }
              : {}),
            ...target.pool.authHeaders(),
          },
          body,
          signal,
          dispatcher: target.pool.dispatcher,
        });
      } catch (err) {
        if (signal.aborted) return { kind: 'cancelled' };
        verdict = 'failure';
        return {
          kind: 'retry',
          error: new GlimpseError(
            'upstream_unavailable',
            `Upstream ${base} could not be reached: ${(err as Error).message}.`,
            { cause: err },
          ),
        };
      }
      if (res.statusCode >= 400) {
        const text = await res.body.text().catch(() => '');
        const error = upstreamHttpError(res.statusCode, text);
        refused = res.statusCode === 429 || res.statusCode === 503;
        if (res.statusCode === 429) return { kind: 'retry', error };
        if (res.statusCode >= 500) {
          verdict = 'failure';
          return { kind: 'retry', error };
        }
        // 4xx: the server is fine, the request is not; another server would say the same.
        verdict = 'success';
        yield { type: 'error', error };
        return { kind: 'final' };
      }
      let usage: Usage | undefined;
      // vLLM and SGLang stream one decoding step per delta and seldom report reasoning tokens: the deltas count them then.
      let reasoningDeltas = 0;
      let finish: FinishReason | undefined;
      let sawDone = false;
      // Servers that leave out a tool call's index (some do): a new id starts the next call, a piece without one continues the last.
      let nextCall = 0;
      let lastCall = 0;
      const callIndex = (call: UpstreamToolCallDelta): number => {
        const index = call.index ?? (call.id ? nextCall : lastCall);
        nextCall = Math.max(nextCall, index + 1);
        lastCall = index;
        return index;
      };
      try {
        // Leaving at [DONE] must not destroy the body (Node builds an AbortError, stack and all, for
        // every stream left before its end): the bytes after it are read in the background below.
        for await (const payload of parseSseData(res.body.iterator({ destroyOnReturn: false }))) {
          if (payload === '[DONE]') {
            sawDone = true;
            break;
          }
          let chunk: UpstreamChunk;
          try {
            chunk = JSON.parse(payload) as UpstreamChunk;
          } catch {
            throw new GlimpseError('upstream_error', 'Upstream sent a stream event that is not JSON.');
          }
          if (chunk.error) {
            const msg = typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'unknown error');
            throw new GlimpseError('upstream_error', `Upstream error: ${msg}`);
          }
          for (const choice of chunk.choices ?? []) {
            const reasoning = choice.delta?.reasoning_content ?? choice.delta?.reasoning;
            if (reasoning) {
              emitted++;
              reasoningDeltas++;
              yield { type: 'reasoning', text: reasoning };
            }
            const content = choice.delta?.content;
            const lps = choice.logprobs?.content;
            if (content || lps?.length) {
              emitted++;
              yield {
                type: 'token',
                text: content ?? '',
                ...(lps?.length
                  ? {
                      logprobs: lps.map((l) => ({
                        token: l.token,
                        logprob: l.logprob,
                        bytes: l.bytes ?? null,
                        top: (l.top_logprobs ?? []).map((t) => ({
                          token: t.token,
                          logprob: t.logprob,
                          bytes: t.bytes ?? null,
                        })),
                      })),
                    }
                  : {}),
              };
            }
            for (const call of choice.delta?.tool_calls ?? []) {
              emitted++;
              yield {
                type: 'tool_call',
                index: callIndex(call),
                ...(call.id ? { id: call.id } : {}),
                ...(call.function?.name ? { name: call.function.name } : {}),
                ...(call.function?.arguments ? { arguments: call.function.arguments } : {}),
              };
            }
            if (choice.finish_reason)
              finish =
                choice.finish_reason === 'length'
                  ? 'length'
                  : choice.finish_reason === 'tool_calls'
                    ? 'tool_calls'
                    : 'stop';
          }
          if (emitted && ttftMs === undefined) ttftMs = performance.now() - sentAt;
          if (chunk.usage)
            usage = {
              promptTokens: chunk.usage.prompt_tokens ?? 0,
              completionTokens: chunk.usage.completion_tokens ?? 0,
              ...(chunk.usage.completion_tokens_details?.reasoning_tokens
                ? { reasoningTokens: chunk.usage.completion_tokens_details.reasoning_tokens }
                : {}),
            };
        }
      } catch (err) {
        if (signal.aborted) return { kind: 'cancelled' };
        verdict = 'failure';
        const error =
          err instanceof GlimpseError
            ? err
            : new GlimpseError('upstream_error', `Upstream stream broke: ${(err as Error).message}.`, { cause: err });
        // Nothing reached the client yet: another attempt is invisible to it.
        if (emitted === 0) return { kind: 'retry', error };
        yield { type: 'error', error };
        return { kind: 'final' };
      } finally {
        // Left for another reason (a bad event, the consumer gone): let the connection go.
        if (sawDone) res.body.dump().catch(() => {});
        else if (!res.body.readableEnded) res.body.destroy();
      }
      if (signal.aborted) return { kind: 'cancelled' };
      if (emitted === 0) {
        verdict = 'failure';
        return {
          kind: 'retry',
          error: new GlimpseError('empty_completion', `Upstream ${base} ended the stream without any tokens.`),
        };
      }
      if (!finish) {
        verdict = 'failure';
        yield {
          type: 'error',
          error: new GlimpseError('upstream_error', 'Upstream stream ended before the answer finished.'),
        };
        return { kind: 'final' };
      }
      verdict = 'success';
      if (usage)
        yield {
          type: 'usage',
          usage: usage.reasoningTokens || !reasoningDeltas ? usage : { ...usage, reasoningTokens: reasoningDeltas },
        };
      yield { type: 'done', finishReason: finish };
      return { kind: 'ok' };
    } finally {
      target.pool.release(member, verdict, { ttftMs, sentWith, refused });
    }
  }

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
