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
import {
  fairnessKey,
  GlimpseError,
  hasToolTurns,
  sift,
  type Engine,
  type GenerateEvent,
  type GenerateRequest,
} from '../core/index.js';
import { createAnswerCache, type AnswerCache, type CacheLookup, type CacheStatus } from '../cache/index.js';
import { resolveImages } from '../images/index.js';
import type { Logger } from '../observability/index.js';
import { Scheduler, type SchedulerStats, type Slot } from '../scheduler/index.js';
import { guardedStream, replayAnswer, storeOnFinish } from './streams.js';
import { admitted, admittedThen, PositionFeed, waitThenRun } from './queue-wait.js';

const AT_ONCE = { waitedMs: 0, queuedAt: 0 };

export interface OpenOptions {
  /** Background work (async jobs): admitted after interactive requests, without a queue timeout. */
  background?: boolean;
}

/** Header that tells clients whether an answer came from the cache. */
export const CACHE_HEADER = 'x-glimpse-cache';

/**
 * What happens before the first engine event, as values in the stream: `queued` (the 1-based
 * position, again whenever it moves) while the request waits, then `admitted` once it has a slot
 * (queuedAt 0: at once). Routes map them to headers, SSE comments or WebSocket messages.
 */
export type QueueEvent =
  { type: 'queued'; position: number } | { type: 'admitted'; waitedMs: number; queuedAt: number };

export type PipelineEvent = GenerateEvent | QueueEvent;

/** The generation's events alone, for readers that take the queue events some other way (`hear`) or not at all. */
export function generationOf(
  events: AsyncIterable<PipelineEvent>,
  hear?: (ev: QueueEvent) => void,
): AsyncIterable<GenerateEvent> {
  return sift(events, (ev): ev is GenerateEvent => ev.type !== 'queued' && ev.type !== 'admitted', hear);
}

/**
 * The event stream of one request: zero or more `queued`, then `admitted` and the generation,
 * which ends with exactly one done or error (a refusal while waiting is that error, before
 * `admitted`). What was known when it opened travels with it as values.
 */
export interface OpenedStream extends AsyncIterable<PipelineEvent> {
  /** hit|miss|bypass, when the answer cache was consulted. */
  readonly cache?: CacheStatus;
  /** The caller's quota standing as x-ratelimit-* headers, when the quota guard counted the request. */
  readonly quota?: Record<string, string>;
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
  return createAnswerCache(config, {
    onError: (err) => logger.warn({ err: err.message }, 'answer cache unavailable; serving without it'),
  });
}

/** Errors that mean "the engine could not answer", where a degraded answer may stand in. */
const UNAVAILABLE: ReadonlySet<string> = new Set([
  'upstream_unavailable',
  'upstream_error',
  'empty_completion',
  'engine_unavailable',
  'rate_limited',
  'engine_error',
]);

export function createPipeline(
  config: Config,
  engine: Engine,
  logger: Logger,
  cache: AnswerCache = defaultCache(config, logger),
): GenerationPipeline {
  const modelIds = () => engine.info().models.map((m) => m.id);
  // The engine's own capacity (per model pool) when it knows it, under maxInFlight as a ceiling.
  const capacity = engine.capacity ? (model?: string) => engine.capacity!(model) : undefined;
  const scheduler = new Scheduler({
    maxInFlight: config.maxInFlight ?? (capacity ? undefined : DEFAULT_MAX_IN_FLIGHT),
    capacity,
    maxQueue: config.maxQueue,
    queueTimeoutMs: config.queueTimeout * 1000,
    interactiveReserve: config.jobs.interactiveReserve,
    ...(engine.home ? { home: engine.home.bind(engine), maxSkips: config.upstreamAffinityMaxSkips } : {}),
  });
  const unsubscribeCapacity = engine.onCapacityChange?.(() => scheduler.capacityChanged());
  const shutdownController = new AbortController();
  const shutdownHooks = new Set<() => void>(); // what stops each running stream (see guardedStream)
  const stopAll = () => (shutdownController.abort(), [...shutdownHooks].forEach((hook) => hook()));
  let degraded = 0;

  function checkModel(req: GenerateRequest): void {
    if (!engine.supportsTools) {
      const t = req.toolOptions;
      const info = engine.info();
      const what = t?.tools?.length
        ? 'tools'
        : t?.responseFormat !== undefined
          ? 'response_format'
          : hasToolTurns(req.messages)
            ? 'tool messages'
            : undefined;
      if (what)
        throw new GlimpseError(
          'tools_unsupported',
          `The ${info.engine} engine (${info.model}) does not support ${what}; function calling and structured output need an upstream server that does (e.g. vLLM with --enable-auto-tool-choice --tool-call-parser glm45 for GLM-4.6V-Flash).`,
          { param: what },
        );
    }
    if (req.logprobs && !engine.supportsLogprobs) {
      throw new GlimpseError(
        'logprobs_unsupported',
        `The ${engine.info().engine} engine does not give token log probabilities.`,
        { param: 'logprobs' },
      );
    }
    // Routes name the default model themselves (RequestDefaults); an empty one is the engine's default.
    const ids = modelIds();
    if (req.model && !ids.includes(req.model)) {
      throw new GlimpseError(
        'model_not_found',
        `The model '${req.model}' does not exist here. Available: ${ids.join(', ')}.`,
        { param: 'model' },
      );
    }
  }

  function checkEngine(): void {
    const h = engine.health();
    if (h.ready) return;
    if (h.status === 'loading')
      throw new GlimpseError('model_loading', h.reason ?? 'The model is still loading; try again shortly.', {
        retryAfterSeconds: 5,
      });
    throw new GlimpseError('engine_unavailable', h.reason ?? 'The engine is not available.');
  }

  function degradedStream(req: GenerateRequest, cause: GlimpseError): OpenedStream {
    degraded++;
    logger.warn(
      { reqId: req.id, code: cause.code, msg: cause.message },
      'engine unavailable: sending the degraded answer',
    );
    const text = config.degradedAnswer ?? '';
    return {
      async *[Symbol.asyncIterator]() {
        yield admitted(AT_ONCE);
        yield { type: 'token', text };
        yield { type: 'done', finishReason: 'stop' };
      },
    };
  }

  /** The generation on its slot; its finished answer stored in the cache when it has a key. */
  function run(
    req: GenerateRequest,
    clientSignal: AbortSignal,
    slot: Slot,
    found: CacheLookup,
  ): AsyncIterable<GenerateEvent> {
    let degradedHere = false;
    const onDegrade = (e: GlimpseError): string | undefined => {
      if (config.degradedAnswer === undefined || !UNAVAILABLE.has(e.code)) return undefined;
      degraded++;
      degradedHere = true;
      logger.warn(
        { reqId: req.id, code: e.code, msg: e.message },
        'engine failed before the first token: sending the degraded answer',
      );
      return config.degradedAnswer;
    };
    const stream = guardedStream({
      req,
      engine,
      clientSignal,
      shutdownSignal: shutdownController.signal,
      shutdownHooks,
      config,
      logger,
      slot,
      onDegrade,
    });
    // A degraded answer stands in for an outage; caching it would keep serving it after recovery.
    return found.key
      ? storeOnFinish(stream, (answer) => (degradedHere ? Promise.resolve() : cache.set(found.key!, answer, req)))
      : stream;
  }

  return {
    modelIds,
    checkModel,
    stats: () => ({ ...scheduler.stats(), degraded }),
    checkAdmission: () => scheduler.checkAdmission(),
    async open(req, clientSignal, opts = {}) {
      if (shutdownController.signal.aborted)
        throw new GlimpseError('shutting_down', 'The server is shutting down; retry on another instance.', {
          retryAfterSeconds: 1,
        });
      checkModel(req);
      try {
        checkEngine();
      } catch (err) {
        if (config.degradedAnswer !== undefined && err instanceof GlimpseError && err.code === 'engine_unavailable')
          return degradedStream(req, err);
        throw err;
      }
      if (clientSignal.aborted)
        throw new GlimpseError('client_closed', 'The client went away before the request started.');
      // Background work is never refused for a full queue (it waits its turn); only shutdown stops it.
      if (!opts.background) scheduler.checkAdmission(req.model);
      // Videos go whole only to an upstream pool said to serve them (vLLM, SGLang); every other engine gets frames.
      const keepVideo = config.video.upstreamPassthrough && engine.info().engine === 'upstream';
      // A model loaded by a profile (--model glm-ocr) gets images at its own bound and in its own grid.
      const profile = engine.info().models.find((m) => m.id === req.model)?.profile;
      await resolveImages(req, config, clientSignal, { output: engine.imageInput ?? 'encoded', keepVideo, profile });
      // Looked up once every image has its fingerprint (the key is made of them), before
      // admission: a hit costs no engine slot.
      const found = await cache.lookup(req);
      const opened = (events: AsyncIterable<PipelineEvent>): OpenedStream => ({
        cache: found.status,
        [Symbol.asyncIterator]: () => events[Symbol.asyncIterator](),
      });
      if (found.answer) {
        logger.debug({ reqId: req.id, distance: found.distance }, 'answer cache hit');
        return opened(admittedThen(AT_ONCE, replayAnswer(found.answer)));
      }
      const feed = new PositionFeed();
      const acquiring = scheduler.acquire({
        keyId: fairnessKey(req),
        pool: req.model,
        signal: clientSignal,
        onPosition: feed.onPosition,
        background: opts.background,
        affinity: engine.affinityKey?.(req),
      });
      // Admitted or refused at once: a refusal is thrown, so the route answers with its status.
      if (!feed.waiting) {
        const slot = await acquiring;
        return opened(admittedThen(slot, run(req, clientSignal, slot, found)));
      }
      return opened(waitThenRun(feed, acquiring, (slot) => run(req, clientSignal, slot, found)));
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
      if (first === 'grace')
        logger.warn({ inFlight: scheduler.inFlight }, 'grace period over: cancelling in-flight requests');
      stopAll();
      await idle; // at once when idle won; after the cancelled streams unwind when grace ran out
    },
  };
}
