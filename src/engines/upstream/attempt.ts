/**
 * One attempt of the upstream engine: a streamed chat completion from one pool member, its events
 * translated to glimpse's, and how it ended (retry only while nothing has been yielded).
 */
import { request, type Dispatcher } from 'undici';
import {
  GlimpseError,
  type GenerateEvent,
  type GenerateRequest,
  type Usage,
  type FinishReason,
} from '../../core/index.js';
import type { PoolMember, UpstreamPool } from './pool.js';
import { SseDataParser } from './sse-parse.js';
import { upstreamHttpError, type UpstreamChunk, type UpstreamToolCallDelta } from './wire.js';

export interface Target {
  pool: UpstreamPool;
  /** Model name sent to this target. */
  model: string;
  label: string;
}

/** How one attempt ended. Only a 'retry' outcome may lead to another attempt. */
export type Outcome =
  { kind: 'ok' } | { kind: 'retry'; error: GlimpseError } | { kind: 'final' } | { kind: 'cancelled' };

/** One attempt against one member. Yields events; returns how it ended. */
export async function* attempt(
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
  let released = false;
  // Decoding steps streamed (chunks that carried output), for the member's turnover odds (turnover.ts).
  let steps = 0;
  const track = { weight: 0 };
  target.pool.progress(member, track, 0, req.sampling.maxTokens);
  const releaseMember = () => {
    if (released) return;
    released = true;
    target.pool.release(member, verdict, { ttftMs, sentWith, refused, track, steps });
  };
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
      const parser = new SseDataParser();
      const body = res.body.iterator({ destroyOnReturn: false }) as AsyncIterableIterator<Uint8Array>;
      // One loop over the body's chunks, each parsed at once: no async generator per event in between.
      reading: for (let r = await body.next(); ; r = await body.next()) {
        for (const payload of r.done ? parser.end() : parser.push(r.value)) {
          if (payload === '[DONE]') {
            sawDone = true;
            break reading;
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
          const before = emitted;
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
          if (emitted !== before) target.pool.progress(member, track, ++steps, req.sampling.maxTokens);
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
        if (r.done) break;
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
    // The replica is done with it: free its place before the last events go out, so that the slot
    // the consumer frees on `done` finds the replica's room already there (affinity-aware
    // dequeuing reads it), not after the generator unwinds.
    releaseMember();
    if (usage)
      yield {
        type: 'usage',
        usage: usage.reasoningTokens || !reasoningDeltas ? usage : { ...usage, reasoningTokens: reasoningDeltas },
      };
    yield { type: 'done', finishReason: finish };
    return { kind: 'ok' };
  } finally {
    releaseMember();
  }
}
