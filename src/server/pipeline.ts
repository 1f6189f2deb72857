/**
 * The one path from a parsed request to an engine. Every route calls open(); nothing else talks
 * to the engine. Errors found before generation starts are thrown (the route answers with a
 * status); errors after that arrive as the stream's final 'error' event.
 *
 * Order of work in open(): cheap refusals first (draining, model, engine state, a full queue)
 * so an overloaded server answers in microseconds; then images are resolved (CPU and network,
 * outside any slot); then the scheduler admits or queues; then the engine runs under the total
 * and idle deadlines, the client's disconnect and the server's shutdown.
 */
import { DEFAULT_MAX_IN_FLIGHT, type Config } from '../config/index.js';
import { fairnessKey, GlimpseError, hasToolTurns, toGlimpseError, type Engine, type GenerateEvent, type GenerateRequest } from '../core/index.js';
import { createAnswerCache, type AnswerCache, type CachedAnswer, type CacheStatus } from '../cache/index.js';
import { resolveImages, withImageTokens } from '../images/index.js';
import type { Logger } from '../observability/index.js';
import { Scheduler, type SchedulerStats, type Slot } from '../scheduler/index.js';

export interface OpenOptions {
  /** Called with the 1-based queue position when the request has to wait, and whenever it moves. */
  onQueued?: (position: number) => void;
  /** Hears hit|miss|bypass before the stream is returned, so routes can send X-Glimpse-Cache. */
  onCache?: (status: CacheStatus) => void;
  /** Hears the caller's quota standing as x-ratelimit-* headers; called by the quota guard around the pipeline. */
  onQuota?: (headers: Record<string, string>) => void;
  /** Background work (async jobs): admitted after interactive requests, without a queue timeout. */
  background?: boolean;
}

/** Header that tells clients whether an answer came from the cache. */
export const CACHE_HEADER = 'x-glimpse-cache';

/** The event stream of one admitted request. It always ends with exactly one done or error. */
export interface OpenedStream extends AsyncIterable<GenerateEvent> {
  /** ms the request waited in the queue. */
  readonly waitedMs: number;
  /** Position it had when it joined the queue (0: admitted at once). */
  readonly queuedAt: number;
}

export interface PipelineStats extends SchedulerStats {
  /** Answers replaced by the configured degraded answer. */
  degraded: number;
}

export interface GenerationPipeline {
  /** Validate, resolve images, admit; then the event stream, which always ends with done or error. */
  open(req: GenerateRequest, clientSignal: AbortSignal, opts?: OpenOptions): Promise<OpenedStream>;
  /** Model ids this server answers to. */
  modelIds(): string[];
  /** Throws model_not_found for one not served, tools_unsupported for tools the engine cannot honour. */
  checkModel(req: GenerateRequest): void;
  /** Gauges and counters for metrics and tests: in flight, queued, refusals. */
  stats(): PipelineStats;
  /** Throws queue_full / shutting_down if a request arriving now would be refused at once. */
  checkAdmission(): void;
  /**
   * Graceful shutdown: refuse new and queued requests (shutting_down), let in-flight ones finish
   * for graceMs, then cancel the rest with a shutting_down error event. Resolves when none is left.
   */
  shutdown(graceMs: number): Promise<void>;
  /** Resolves true once the answer cache can serve (Redis connected), false after a short wait. */
  cacheReady(): Promise<boolean>;
  /** Release what the pipeline holds (the cache's Redis connection). */
  close(): Promise<void>;
}

function defaultCache(config: Config, logger: Logger): AnswerCache {
  return createAnswerCache(config, { onError: (err) => logger.warn({ err: err.message }, 'answer cache unavailable; serving without it') });
}

/** A cached answer as the event stream an engine would have produced. */
function replayAnswer(answer: CachedAnswer): OpenedStream {
  return {
    waitedMs: 0,
    queuedAt: 0,
    async *[Symbol.asyncIterator]() {
      if (answer.reasoning) yield { type: 'reasoning', text: answer.reasoning };
      yield { type: 'token', text: answer.text };
      yield { type: 'usage', usage: answer.usage };
      yield { type: 'done', finishReason: answer.finishReason };
    },
  };
}

/** Pass events through; when the answer finishes normally (stop or length), hand it to `store`. */
function storeOnFinish(stream: OpenedStream, store: (answer: CachedAnswer) => Promise<void>): OpenedStream {
  return {
    get waitedMs() {
      return stream.waitedMs;
    },
    get queuedAt() {
      return stream.queuedAt;
    },
    async *[Symbol.asyncIterator]() {
      let text = '';
      let reasoning = '';
      let usage: CachedAnswer['usage'] | undefined;
      let completionTokens = 0;
      for await (const ev of stream) {
        if (ev.type === 'token') {
          text += ev.text;
          completionTokens++;
        } else if (ev.type === 'reasoning') reasoning += ev.text;
        else if (ev.type === 'usage') usage = ev.usage;
        else if (ev.type === 'done' && ev.finishReason !== 'cancelled' && (text || reasoning)) {
          // Not awaited: a slow cache must not hold the end of the response.
          void store({ text, ...(reasoning ? { reasoning } : {}), usage: usage ?? { promptTokens: 0, completionTokens }, finishReason: ev.finishReason });
        }
        yield ev;
      }
    },
  };
}

/** Errors that mean "the engine could not answer", where a degraded answer may stand in. */
const UNAVAILABLE: ReadonlySet<string> = new Set(['upstream_unavailable', 'upstream_error', 'empty_completion', 'engine_unavailable', 'rate_limited', 'engine_error']);

export function createPipeline(config: Config, engine: Engine, logger: Logger, cache: AnswerCache = defaultCache(config, logger)): GenerationPipeline {
  const modelIds = () => engine.info().models.map((m) => m.id);
  // The engine's own capacity (per model pool) when it knows it, under maxInFlight as a ceiling.
  const capacity = engine.capacity ? (model?: string) => engine.capacity!(model) : undefined;
  const scheduler = new Scheduler({ maxInFlight: config.maxInFlight ?? (capacity ? undefined : DEFAULT_MAX_IN_FLIGHT), capacity, maxQueue: config.maxQueue, queueTimeoutMs: config.queueTimeout * 1000, interactiveReserve: config.jobs.interactiveReserve });
  const unsubscribeCapacity = engine.onCapacityChange?.(() => scheduler.capacityChanged());
  const shutdownController = new AbortController();
  const shutdownHooks = new Set<() => void>(); // what stops each running stream (see guardedStream)
  const stopAll = () => (shutdownController.abort(), [...shutdownHooks].forEach((hook) => hook()));
  let degraded = 0;

  function checkModel(req: GenerateRequest): void {
    if (!engine.supportsTools) {
      const t = req.toolOptions;
      const info = engine.info();
      const what = t?.tools?.length ? 'tools' : t?.responseFormat !== undefined ? 'response_format' : hasToolTurns(req.messages) ? 'tool messages' : undefined;
      if (what) throw new GlimpseError('tools_unsupported', `The ${info.engine} engine (${info.model}) does not support ${what}; function calling and structured output need an upstream server that does (e.g. vLLM with --enable-auto-tool-choice --tool-call-parser glm45 for GLM-4.6V-Flash).`, { param: what });
    }
    if (req.logprobs && !engine.supportsLogprobs) {
      throw new GlimpseError('logprobs_unsupported', `The ${engine.info().engine} engine does not give token log probabilities.`, { param: 'logprobs' });
    }
    // Routes name the default model themselves (RequestDefaults); an empty one is the engine's default.
    const ids = modelIds();
    if (req.model && !ids.includes(req.model)) {
      throw new GlimpseError('model_not_found', `The model '${req.model}' does not exist here. Available: ${ids.join(', ')}.`, { param: 'model' });
    }
  }

  function checkEngine(): void {
    const h = engine.health();
    if (h.ready) return;
    if (h.status === 'loading') throw new GlimpseError('model_loading', h.reason ?? 'The model is still loading; try again shortly.', { retryAfterSeconds: 5 });
    throw new GlimpseError('engine_unavailable', h.reason ?? 'The engine is not available.');
  }

  function degradedStream(req: GenerateRequest, cause: GlimpseError): OpenedStream {
    degraded++;
    logger.warn({ reqId: req.id, code: cause.code, msg: cause.message }, 'engine unavailable: sending the degraded answer');
    const text = config.degradedAnswer ?? '';
    return {
      waitedMs: 0,
      queuedAt: 0,
      async *[Symbol.asyncIterator]() {
        yield { type: 'token', text };
        yield { type: 'done', finishReason: 'stop' };
      },
    };
  }

  return {
    modelIds,
    checkModel,
    stats: () => ({ ...scheduler.stats(), degraded }),
    checkAdmission: () => scheduler.checkAdmission(),
    async open(req, clientSignal, opts = {}) {
      if (shutdownController.signal.aborted) throw new GlimpseError('shutting_down', 'The server is shutting down; retry on another instance.', { retryAfterSeconds: 1 });
      checkModel(req);
      try {
        checkEngine();
      } catch (err) {
        if (config.degradedAnswer !== undefined && err instanceof GlimpseError && err.code === 'engine_unavailable') return degradedStream(req, err);
        throw err;
      }
      if (clientSignal.aborted) throw new GlimpseError('client_closed', 'The client went away before the request started.');
      // Background work is never refused for a full queue (it waits its turn); only shutdown stops it.
      if (!opts.background) scheduler.checkAdmission(req.model);
      // Videos go whole only to an upstream pool said to serve them (vLLM, SGLang); every other engine gets frames.
      const keepVideo = config.video.upstreamPassthrough && engine.info().engine === 'upstream';
      await resolveImages(req, config, clientSignal, { output: engine.imageInput ?? 'encoded', keepVideo });
      // Looked up once every image has its fingerprint (the key is made of them), before
      // admission: a hit costs no engine slot.
      const found = await cache.lookup(req);
      opts.onCache?.(found.status);
      if (found.answer) {
        logger.debug({ reqId: req.id, distance: found.distance }, 'answer cache hit');
        return replayAnswer(found.answer);
      }
      const slot = await scheduler.acquire({ keyId: fairnessKey(req), pool: req.model, signal: clientSignal, onPosition: opts.onQueued, background: opts.background });
      let degradedHere = false;
      const onDegrade = (e: GlimpseError): string | undefined => {
        if (config.degradedAnswer === undefined || !UNAVAILABLE.has(e.code)) return undefined;
        degraded++;
        degradedHere = true;
        logger.warn({ reqId: req.id, code: e.code, msg: e.message }, 'engine failed before the first token: sending the degraded answer');
        return config.degradedAnswer;
      };
      const stream = guardedStream({ req, engine, clientSignal, shutdownSignal: shutdownController.signal, shutdownHooks, config, logger, slot, onDegrade });
      // A degraded answer stands in for an outage; caching it would keep serving it after recovery.
      return found.key ? storeOnFinish(stream, (answer) => (degradedHere ? Promise.resolve() : cache.set(found.key!, answer, req))) : stream;
    },
    cacheReady: () => cache.ready(),
    close: () => {
      unsubscribeCapacity?.();
      return cache.close();
    },
    async shutdown(graceMs) {
      const idle = scheduler.drain();
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace'>((r) => {
        timer = setTimeout(() => r('grace'), graceMs);
      });
      const first = await Promise.race([idle.then(() => 'idle' as const), graceOver]);
      clearTimeout(timer);
      if (first === 'grace') logger.warn({ inFlight: scheduler.inFlight }, 'grace period over: cancelling in-flight requests');
      stopAll();
      await idle; // at once when idle won; after the cancelled streams unwind when grace ran out
    },
  };
}

interface GuardContext {
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
function guardedStream(ctx: GuardContext): OpenedStream {
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
          return { type: 'error', error: new GlimpseError('request_timeout', `The request took longer than ${fmtSeconds(totalMs)} and was stopped.`) };
        case 'idle':
          return { type: 'error', error: new GlimpseError('idle_timeout', `The engine produced nothing for ${fmtSeconds(idleMs)} and was stopped.`) };
        case 'shutdown':
          return { type: 'error', error: new GlimpseError('shutting_down', 'The server is shutting down and stopped this request; retry on another instance.', { retryAfterSeconds: 1 }) };
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
        const r = await new Promise<IteratorResult<GenerateEvent> | typeof STOPPED>((resolve, reject) => void ((wake = resolve), next.then(resolve, reject)));
        wake = waitingSince = undefined;
        if (r === STOPPED) continue;
        if (r.done) {
          ended = true;
          if (why) yield terminalFor(why);
          else yield { type: 'error', error: new GlimpseError('engine_error', 'The engine ended the stream without finishing the answer.') };
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
        yield ev.type === 'usage' ? { type: 'usage', usage: withImageTokens(ev.usage, ctx.req, ctx.config.images.patchMultiple) } : ev;
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
      logger.debug({ reqId: req.id, ms: Date.now() - begun, tokens, stop: why, waitedMs: Math.round(slot.waitedMs) }, 'generation finished');
    }
  }

  const gen = run();
  return {
    waitedMs: slot.waitedMs,
    queuedAt: slot.queuedAt,
    [Symbol.asyncIterator]: () => gen,
  };
}

function fmtSeconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
