/**
 * Upstream engine: one or more OpenAI-compatible servers (vLLM, SGLang, Ollama, LM Studio,
 * llama-server, Zhipu's cloud API). Streams are passed through chunk by chunk; reasoning
 * (`reasoning_content`, or `reasoning` as newer vLLM names it) and usage are carried.
 *
 * Reliability: each attempt goes to the least-busy member of a pool (pool.ts); connect errors,
 * 429/5xx, broken and empty streams are retried with jittered backoff, but only while nothing has
 * been yielded (so the client never sees a retry); then the fallback chain (other models, a
 * second pool) is tried; request ids travel to the upstream as X-Request-Id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';
import type { Config } from '../../config/index.js';
import { servedModelName } from '../../config/index.js';
import { GlimpseError, templateVariables, type Engine, type EngineHealth, type GenerateEvent, type GenerateRequest, type Usage, type FinishReason } from '../../core/index.js';
import { toDataUrl } from '../../images/index.js';
import type { Logger } from '../../observability/index.js';
import { UpstreamPool, type PoolMember } from './pool.js';
import { parseSseData } from './sse-parse.js';

export { parseSseData } from './sse-parse.js';
export { CircuitBreaker, type BreakerState } from './breaker.js';
export { UpstreamPool, type PoolMember, type MemberStats } from './pool.js';

interface UpstreamToolCallDelta {
  index?: number;
  id?: string | null;
  function?: { name?: string | null; arguments?: string | null } | null;
}

interface UpstreamLogprob {
  token: string;
  logprob: number;
  bytes?: number[] | null;
  top_logprobs?: Array<{ token: string; logprob: number; bytes?: number[] | null }> | null;
}

interface UpstreamChunk {
  choices?: Array<{
    delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null; tool_calls?: UpstreamToolCallDelta[] | null };
    logprobs?: { content?: UpstreamLogprob[] | null } | null;
    finish_reason?: string | null;
  }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string; code?: string | number } | string;
}

/** The OpenAI chat request body an upstream receives. */
export function toOpenAIRequestBody(req: GenerateRequest, upstreamModel: string, thinkingParam: Config['upstreamThinkingParam'] = 'both'): Record<string, unknown> {
  const messages = req.messages.map((m) => {
    const onlyText = m.content.every((p) => p.type === 'text');
    const text = () => m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
    if (m.role === 'tool') return { role: 'tool', tool_call_id: m.toolCallId, content: text() };
    if (m.toolCalls?.length) return { role: 'assistant', content: m.content.length ? text() : null, tool_calls: m.toolCalls };
    if (onlyText) return { role: m.role, content: text() };
    return {
      role: m.role,
      content: m.content.map((p) => {
        if (p.type === 'text') return { type: 'text', text: p.text };
        if (!p.resolved) throw new GlimpseError('internal_error', 'An image reached the upstream engine unresolved.');
        return { type: 'image_url', image_url: { url: toDataUrl(p.resolved) } };
      }),
    };
  });
  const body: Record<string, unknown> = {
    model: upstreamModel,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: req.sampling.maxTokens,
    temperature: req.sampling.temperature,
    top_p: req.sampling.topP,
  };
  const s = req.sampling;
  if (s.seed !== undefined) body.seed = s.seed;
  if (s.stop.length) body.stop = s.stop;
  if (s.presencePenalty !== undefined) body.presence_penalty = s.presencePenalty;
  if (s.frequencyPenalty !== undefined) body.frequency_penalty = s.frequencyPenalty;
  // vLLM's and SGLang's extra sampling parameters; servers that do not know them ignore them.
  if (s.topK !== undefined) body.top_k = s.topK;
  if (s.minP !== undefined) body.min_p = s.minP;
  if (s.repetitionPenalty !== undefined) body.repetition_penalty = s.repetitionPenalty;
  const t = req.toolOptions;
  if (t?.tools) body.tools = t.tools;
  if (t?.toolChoice !== undefined) body.tool_choice = t.toolChoice;
  if (t?.parallelToolCalls !== undefined) body.parallel_tool_calls = t.parallelToolCalls;
  if (t?.responseFormat !== undefined) body.response_format = t.responseFormat;
  if (req.logprobs) {
    body.logprobs = true;
    body.top_logprobs = req.logprobs.top;
  }
  // Thinking on or off, as the client chose (nothing when it did not: the model's default holds).
  const templateVars = templateVariables(req, thinkingParam === 'both' || thinkingParam === 'chat_template_kwargs');
  if (templateVars) body.chat_template_kwargs = templateVars;
  if (req.thinking !== undefined && (thinkingParam === 'both' || thinkingParam === 'thinking')) body.thinking = { type: req.thinking ? 'enabled' : 'disabled' };
  return body;
}

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
  poolStats(): Array<{ pool: string; members: ReturnType<UpstreamPool['stats']> }>;
}

export function createUpstreamEngine(config: Config, logger: Logger): UpstreamEngine {
  if (!config.upstream.length) {
    throw new GlimpseError('invalid_request', 'The upstream engine needs at least one base URL: --upstream http://host:8000/v1');
  }
  const model = servedModelName(config);
  const upstreamModel = config.upstreamModel ?? model;
  const poolOptions = (bases: string[], apiKey: string | undefined) =>
    new UpstreamPool({
      bases,
      apiKey,
      breakerThreshold: config.upstreamBreakerThreshold,
      breakerCooldownMs: config.upstreamBreakerCooldown * 1000,
      healthIntervalMs: config.upstreamHealthInterval * 1000,
      connectTimeoutMs: config.upstreamConnectTimeout * 1000,
      headersTimeoutMs: config.upstreamHeadersTimeout * 1000,
      bodyTimeoutMs: config.idleTimeout * 1000,
    });
  const primary = poolOptions(config.upstream, config.upstreamApiKey);
  const fallbackPool = config.fallbackUpstream.length ? poolOptions(config.fallbackUpstream, config.fallbackUpstreamApiKey ?? config.upstreamApiKey) : undefined;
  // The chain tried in order: the primary model, other models on the same servers, then the fallback pool.
  const targets: Target[] = [
    { pool: primary, model: upstreamModel, label: 'primary' },
    ...config.fallbackModels.map((m) => ({ pool: primary, model: m, label: `fallback model ${m}` })),
    ...(fallbackPool ? [{ pool: fallbackPool, model: config.fallbackUpstreamModel ?? upstreamModel, label: 'fallback pool' }] : []),
  ];
  const pools = fallbackPool ? [primary, fallbackPool] : [primary];
  let started = false;

  /** One attempt against one member. Yields events; returns how it ended. */
  async function* attempt(member: PoolMember, target: Target, body: string, req: GenerateRequest, signal: AbortSignal, n: number): AsyncGenerator<GenerateEvent, Outcome> {
    const base = member.base;
    let emitted = 0;
    let verdict: 'success' | 'failure' | 'neutral' = 'neutral';
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
            ...(req.trace ? { traceparent: req.trace.traceparent, ...(req.trace.tracestate ? { tracestate: req.trace.tracestate } : {}) } : {}),
            ...target.pool.authHeaders(),
          },
          body,
          signal,
          dispatcher: target.pool.dispatcher,
        });
      } catch (err) {
        if (signal.aborted) return { kind: 'cancelled' };
        verdict = 'failure';
        return { kind: 'retry', error: new GlimpseError('upstream_unavailable', `Upstream ${base} could not be reached: ${(err as Error).message}.`, { cause: err }) };
      }
      if (res.statusCode >= 400) {
        const text = await res.body.text().catch(() => '');
        const error = upstreamHttpError(res.statusCode, text);
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
      let finish: FinishReason | undefined;
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
        for await (const payload of parseSseData(res.body)) {
          if (payload === '[DONE]') break;
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
              yield { type: 'reasoning', text: reasoning };
            }
            const content = choice.delta?.content;
            const lps = choice.logprobs?.content;
            if (content || lps?.length) {
              emitted++;
              yield { type: 'token', text: content ?? '', ...(lps?.length ? { logprobs: lps.map((l) => ({ token: l.token, logprob: l.logprob, bytes: l.bytes ?? null, top: (l.top_logprobs ?? []).map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes ?? null })) })) } : {}) };
            }
            for (const call of choice.delta?.tool_calls ?? []) {
              emitted++;
              yield { type: 'tool_call', index: callIndex(call), ...(call.id ? { id: call.id } : {}), ...(call.function?.name ? { name: call.function.name } : {}), ...(call.function?.arguments ? { arguments: call.function.arguments } : {}) };
            }
            if (choice.finish_reason) finish = choice.finish_reason === 'length' ? 'length' : choice.finish_reason === 'tool_calls' ? 'tool_calls' : 'stop';
          }
          if (chunk.usage) usage = { promptTokens: chunk.usage.prompt_tokens ?? 0, completionTokens: chunk.usage.completion_tokens ?? 0 };
        }
      } catch (err) {
        if (signal.aborted) return { kind: 'cancelled' };
        verdict = 'failure';
        const error = err instanceof GlimpseError ? err : new GlimpseError('upstream_error', `Upstream stream broke: ${(err as Error).message}.`, { cause: err });
        // Nothing reached the client yet: another attempt is invisible to it.
        if (emitted === 0) return { kind: 'retry', error };
        yield { type: 'error', error };
        return { kind: 'final' };
      }
      if (signal.aborted) return { kind: 'cancelled' };
      if (emitted === 0) {
        verdict = 'failure';
        return { kind: 'retry', error: new GlimpseError('empty_completion', `Upstream ${base} ended the stream without any tokens.`) };
      }
      if (!finish) {
        verdict = 'failure';
        yield { type: 'error', error: new GlimpseError('upstream_error', 'Upstream stream ended before the answer finished.') };
        return { kind: 'final' };
      }
      verdict = 'success';
      if (usage) yield { type: 'usage', usage };
      yield { type: 'done', finishReason: finish };
      return { kind: 'ok' };
    } finally {
      target.pool.release(member, verdict);
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
      for (const target of targets) {
        const tried = new Set<PoolMember>();
        // Built once per target (the model name is its only difference), not per retry: images make it megabytes.
        let body: string | undefined;
        for (let i = 0; i <= config.upstreamRetries; i++) {
          const member = target.pool.acquire(tried);
          if (!member) {
            lastError ??= new GlimpseError('upstream_unavailable', `Every ${target.label} upstream is ejected after repeated failures; retry shortly.`, { headers: { 'Retry-After': String(Math.ceil(config.upstreamBreakerCooldown)) } });
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
          logger.warn({ reqId: req.id, upstream: member.base, target: target.label, attempt: n, code: outcome.error.code, msg: outcome.error.message }, 'upstream attempt failed before the first token; trying again');
        }
      }
      yield { type: 'error', error: lastError ?? new GlimpseError('upstream_unavailable', 'No upstream could answer.') };
    },

    // OpenAI-compatible servers take tools and response_format; whether the model honours them is theirs to say (vLLM answers 400 without a tool parser).
    supportsTools: true,
    supportsLogprobs: true,
    info: () => ({ engine: 'upstream', model, models: [{ id: model, ownedBy: 'upstream' }], device: `upstream (${config.upstream.length} server${config.upstream.length > 1 ? 's' : ''})`, simulated: false }),
    health: (): EngineHealth => {
      if (!started) return { status: 'loading', modelLoaded: false, ready: false, reason: 'Checking upstream servers.' };
      if (pools.some((p) => p.anyUp())) return { status: 'healthy', modelLoaded: true, ready: true };
      const why = primary.members.map((m) => `${m.base}: ${m.lastError ?? m.breaker.current}`).join('; ');
      return { status: 'unhealthy', modelLoaded: false, ready: false, reason: `No upstream is answering (${why}).` };
    },
    poolStats: () => pools.map((p, i) => ({ pool: i === 0 ? 'primary' : 'fallback', members: p.stats() })),
    async close() {
      await Promise.all(pools.map((p) => p.close()));
    },
  };
}

function upstreamHttpError(status: number, body: string): GlimpseError {
  let message = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string; message?: string; detail?: string };
    message = (typeof parsed.error === 'string' ? parsed.error : parsed.error?.message) ?? parsed.message ?? parsed.detail ?? message;
  } catch {
    /* not JSON: keep the text */
  }
  if (status === 400 || status === 422) return new GlimpseError('invalid_request', `Upstream refused the request: ${message}`);
  if (status === 429) return new GlimpseError('rate_limited', `Upstream is rate limiting: ${message}`, { headers: { 'Retry-After': '1' } });
  return new GlimpseError('upstream_error', `Upstream answered HTTP ${status}: ${message}`);
}
