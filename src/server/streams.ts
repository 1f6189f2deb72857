/**
 * The event streams the pipeline hands out, apart from its admission logic: an engine run under
 * its deadlines (guardedStream), a cached answer replayed, and the pass-through that stores a
 * finished answer in the cache. Each ends with exactly one done or error.
 */
import type { Config } from '../config/index.js';
import {
  GlimpseError,
  tap,
  toGlimpseError,
  type Engine,
  type GenerateEvent,
  type GenerateRequest,
} from '../core/index.js';
import type { CachedAnswer } from '../cache/index.js';
import type { Logger } from '../observability/index.js';
import type { Slot } from '../scheduler/index.js';
import { withImageTokens } from '../images/index.js';

type Events = AsyncIterable<GenerateEvent>;

/** A cached answer as the event stream an engine would have produced. */
export function replayAnswer(answer: CachedAnswer): Events {
  return {
    async *[Symbol.asyncIterator]() {
      if (answer.reasoning) yield { type: 'reasoning', text: answer.reasoning };
      yield { type: 'token', text: answer.text };
      yield { type: 'usage', usage: answer.usage };
      yield { type: 'done', finishReason: answer.finishReason };
    },
  };
}

/** Pass events through; when the answer finishes normally (stop or length), hand it to `store`. */
export function storeOnFinish(stream: Events, store: (answer: CachedAnswer) => Promise<void>): Events {
  return {
    [Symbol.asyncIterator]: () => {
      let text = '';
      let reasoning = '';
      let usage: CachedAnswer['usage'] | undefined;
      let completionTokens = 0;
      return tap(stream, (ev) => {
        if (ev.type === 'token') {
          text += ev.text;
          completionTokens++;
        } else if (ev.type === 'reasoning') reasoning += ev.text;
        else if (ev.type === 'usage') usage = ev.usage;
        else if (ev.type === 'done' && ev.finishReason !== 'cancelled' && (text || reasoning)) {
          // Not awaited: a slow cache must not hold the end of the response.
          void store({
            text,
            ...(reasoning ? { reasoning } : {}),
            usage: usage ?? { promptTokens: 0, completionTokens },
            finishReason: ev.finishReason,
          });
        }
      })[Symbol.asyncIterator]();
    },
  };
}

export interface GuardContext {
  req: GenerateRequest;
  engine: Engine;
  clientSignal: AbortSignal;
  shutdownSignal: AbortSignal;
  shutdownHooks: Set<() => void>;
  config: Config;
  logger: Logger;
  slot: Slot;
  /** Given the error that ended a stream before any token, the text to answer instead (or undefined). */
  onDegrade?: (e: GlimpseError) => string | undefined;
}

type StopReason = 'total' | 'idle' | 'client' | 'shutdown';

const STOPPED = Symbol('stopped');

/**
 * Runs the engine under the total and idle deadlines and turns every way a stream can end into
 * exactly one terminal event: done, or an error the client can read. Waiting on the engine is
 * raced against every stop reason, so even an engine that ignores its abort signal cannot hold
 * the client or the slot: both are let go at once, and the engine is told to stop.
 */
export function guardedStream(ctx: GuardContext): Events {
  const { req, engine, clientSignal, shutdownSignal, shutdownHooks, config, logger, slot } = ctx;
  let started = false;
  const ac = new AbortController();
  // The engine starts now, not when the route first reads: prefill overlaps with the route
  // writing response headers. Its first event waits in `firstNext` until run() takes it.
  let it: AsyncIterator<GenerateEvent> | undefined;
  let firstNext: Promise<IteratorResult<GenerateEvent>> | undefined;
  try {
    it = engine.generate(req, ac.signal)[Symbol.asyncIterator]();
    firstNext = it.next();
  } catch (err) {
    firstNext = Promise.reject(err);
  }
  // Read by run(); if the stream is never read, a rejection must not become an unhandled one.
  firstNext.catch(() => {});
  // A stream nobody ever iterates (the route failed between open and reading) must not hold its
  // slot or keep the engine busy.
  const releaseIfUnread = () => {
    if (started) return;
    ac.abort();
    it?.return?.().catch(() => {});
    slot.release();
  };
  clientSignal.addEventListener('abort', releaseIfUnread, { once: true });

  async function* run(): AsyncGenerator<GenerateEvent> {
    started = true;
    clientSignal.removeEventListener('abort', releaseIfUnread);
    let why: StopReason | undefined;
    // Wakes the wait in progress (not a race of every event against one never-settling promise: a reaction kept per token).
    let wake: ((v: typeof STOPPED) => void) | undefined;
    const stop = (reason: StopReason) => {
      if (!why) why = reason;
      ac.abort();
      wake?.(STOPPED);
    };
    const totalMs = config.requestTimeout * 1000;
    const idleMs = config.idleTimeout * 1000;
    const totalTimer = setTimeout(() => stop('total'), totalMs);
    // One idle timer per request, not per token: on firing early it re-arms for what is left of the current wait.
    let waitingSince: number | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    const onIdleTimer = () => {
      const waited = waitingSince === undefined ? 0 : performance.now() - waitingSince;
      if (waited >= idleMs) stop('idle');
      else idleTimer = setTimeout(onIdleTimer, idleMs - waited);
    };
    const onClientGone = () => stop('client');
    if (clientSignal.aborted) stop('client');
    clientSignal.addEventListener('abort', onClientGone, { once: true });
    // Through the pipeline's set: a listener per request on one shared signal warns past 10 (MaxListenersExceededWarning).
    const onShutdown = () => stop('shutdown');
    if (shutdownSignal.aborted) stop('shutdown');
    else shutdownHooks.add(onShutdown);

    const terminalFor = (reason: StopReason): GenerateEvent => {
      switch (reason) {
        case 'total':
          return {
            type: 'error',
            error: new GlimpseError(
              'request_timeout',
              `The request took longer than ${fmtSeconds(totalMs)} and was stopped.`,
            ),
          };
        case 'idle':
          return {
            type: 'error',
            error: new GlimpseError(
              'idle_timeout',
              `The engine produced nothing for ${fmtSeconds(idleMs)} and was stopped.`,
            ),
          };
        case 'shutdown':
          return {
            type: 'error',
            error: new GlimpseError(
              'shutting_down',
              'The server is shutting down and stopped this request; retry on another instance.',
              { retryAfterSeconds: 1 },
            ),
          };
        case 'client':
          return { type: 'done', finishReason: 'cancelled' };
      }
    };

    const begun = Date.now();
    let ended = false;
    let heard = false;
    let tokens = 0;
    try {
      for (;;) {
        if (why) {
          ended = true;
          yield terminalFor(why);
          break;
        }
        // The idle deadline runs between events. Before the first one only the total deadline does:
        // a CPU reading several photos (vision encoder, then prefill) can be silent for a minute.
        if (heard) {
          waitingSince = performance.now();
          idleTimer ??= setTimeout(onIdleTimer, idleMs);
        }
        const next = firstNext ?? it!.next();
        firstNext = undefined;
        // A rejection after a stop won settles nothing (and is not an unhandled one).
        const r = await new Promise<IteratorResult<GenerateEvent> | typeof STOPPED>(
          (resolve, reject) => void ((wake = resolve), next.then(resolve, reject)),
        );
        wake = waitingSince = undefined;
        if (r === STOPPED) continue;
        if (r.done) {
          ended = true;
          if (why) yield terminalFor(why);
          else
            yield {
              type: 'error',
              error: new GlimpseError('engine_error', 'The engine ended the stream without finishing the answer.'),
            };
          break;
        }
        heard = true;
        const ev = r.value;
        // Anything the client already has (text, reasoning, a piece of a tool call) rules out a degraded stand-in.
        if (ev.type === 'token' || ev.type === 'reasoning' || ev.type === 'tool_call') tokens++;
        if (ev.type === 'done' || ev.type === 'error') {
          ended = true;
          if (why && !(ev.type === 'done' && ev.finishReason !== 'cancelled')) yield terminalFor(why);
          else {
            const stand = ev.type === 'error' && tokens === 0 ? ctx.onDegrade?.(ev.error) : undefined;
            if (stand !== undefined) {
              yield { type: 'token', text: stand };
              yield { type: 'done', finishReason: 'stop' };
            } else yield ev;
          }
          break;
        }
        yield ev.type === 'usage'
          ? { type: 'usage', usage: withImageTokens(ev.usage, ctx.req, ctx.config.images.patchMultiple) }
          : ev;
      }
    } catch (err) {
      if (!ended) {
        ended = true;
        const error = toGlimpseError(err);
        if (error.code === 'internal_error') logger.error({ err, reqId: req.id }, 'engine threw');
        const stand = tokens === 0 ? ctx.onDegrade?.(error) : undefined;
        if (stand !== undefined) {
          yield { type: 'token', text: stand };
          yield { type: 'done', finishReason: 'stop' };
        } else yield { type: 'error', error };
      }
    } finally {
      clearTimeout(totalTimer);
      clearTimeout(idleTimer);
      clientSignal.removeEventListener('abort', onClientGone);
      shutdownHooks.delete(onShutdown);
      // Leaving early (client gone, consumer stopped, deadline) must stop the engine too.
      if (!ended || why) ac.abort();
      // Let the engine unwind in the background; the slot is free now, as the client is.
      it?.return?.().catch(() => {});
      slot.release();
      logger.debug(
        { reqId: req.id, ms: Date.now() - begun, tokens, stop: why, waitedMs: Math.round(slot.waitedMs) },
        'generation finished',
      );
    }
  }

  const gen = run();
  return { [Symbol.asyncIterator]: () => gen };
}

function fmtSeconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
