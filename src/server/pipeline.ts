/**
 * The one path from a parsed request to an engine. Every route calls open(); nothing else talks
 * to the engine. Errors found before generation starts are thrown (the route answers with a
 * status); errors after that arrive as the stream's final 'error' event.
 */
import type { Config } from '../config/index.js';
import { GlimpseError, toGlimpseError, type Engine, type GenerateEvent, type GenerateRequest } from '../core/index.js';
import { createAnswerCache, type AnswerCache, type CachedAnswer, type CacheStatus } from '../cache/index.js';
import { resolveImages } from '../images/index.js';
import type { Logger } from '../observability/index.js';

export interface GenerationPipeline {
  /**
   * Validate, resolve images, look in the answer cache, admit; then the event stream, which always
   * ends with done or error. `onCache` hears hit|miss|bypass before the stream is returned, so
   * routes can send it as the X-Glimpse-Cache header.
   */
  open(req: GenerateRequest, clientSignal: AbortSignal, onCache?: (status: CacheStatus) => void): Promise<AsyncIterable<GenerateEvent>>;
  /** Model ids this server answers to. */
  modelIds(): string[];
  /** Resolves true once the answer cache can serve (Redis connected), false after a short wait. */
  cacheReady(): Promise<boolean>;
  /** Release what the pipeline holds (the cache's Redis connection). */
  close(): Promise<void>;
}

/** Header that tells clients whether an answer came from the cache. */
export const CACHE_HEADER = 'x-glimpse-cache';

export function createPipeline(config: Config, engine: Engine, logger: Logger, cache: AnswerCache = defaultCache(config, logger)): GenerationPipeline {
  const modelIds = () => engine.info().models.map((m) => m.id);

  function checkModel(req: GenerateRequest): void {
    const ids = modelIds();
    if (!req.model) {
      req.model = engine.info().model;
      return;
    }
    if (!ids.includes(req.model)) {
      throw new GlimpseError('model_not_found', `The model '${req.model}' does not exist here. Available: ${ids.join(', ')}.`, { param: 'model' });
    }
  }

  function checkEngine(): void {
    const h = engine.health();
    if (h.ready) return;
    if (h.status === 'loading') throw new GlimpseError('model_loading', h.reason ?? 'The model is still loading; try again shortly.', { headers: { 'Retry-After': '5' } });
    throw new GlimpseError('engine_unavailable', h.reason ?? 'The engine is not available.');
  }

  return {
    modelIds,
    async open(req, clientSignal, onCache) {
      checkModel(req);
      checkEngine();
      if (clientSignal.aborted) throw new GlimpseError('request_timeout', 'The client went away before the request started.');
      await resolveImages(req, config, clientSignal);
      // Looked up only once every image has its fingerprint: the key is made of them.
      const found = await cache.lookup(req);
      onCache?.(found.status);
      if (found.answer) {
        logger.debug({ reqId: req.id, distance: found.distance }, 'answer cache hit');
        return replayAnswer(found.answer);
      }
      const events = guardedStream(req, engine, clientSignal, config, logger);
      return found.key ? storeOnFinish(events, (answer) => cache.set(found.key!, answer, req)) : events;
    },
    cacheReady: () => cache.ready(),
    close: () => cache.close(),
  };
}

function defaultCache(config: Config, logger: Logger): AnswerCache {
  return createAnswerCache(config, { onError: (err) => logger.warn({ err: err.message }, 'answer cache unavailable; serving without it') });
}

/** A cached answer as the event stream an engine would have produced. */
async function* replayAnswer(answer: CachedAnswer): AsyncGenerator<GenerateEvent> {
  if (answer.reasoning) yield { type: 'reasoning', text: answer.reasoning };
  yield { type: 'token', text: answer.text };
  yield { type: 'usage', usage: answer.usage };
  yield { type: 'done', finishReason: answer.finishReason };
}

/** Pass events through; when the answer finishes normally (stop or length), hand it to `store`. */
async function* storeOnFinish(events: AsyncIterable<GenerateEvent>, store: (answer: CachedAnswer) => Promise<void>): AsyncGenerator<GenerateEvent> {
  let text = '';
  let reasoning = '';
  let usage: CachedAnswer['usage'] | undefined;
  let completionTokens = 0;
  for await (const ev of events) {
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
}

/**
 * Runs the engine under the request deadline and turns every way a stream can end into exactly
 * one terminal event: done, or an error the client can read.
 */
async function* guardedStream(req: GenerateRequest, engine: Engine, clientSignal: AbortSignal, config: Config, logger: Logger): AsyncGenerator<GenerateEvent> {
  const ac = new AbortController();
  let timedOut = false;
  const totalMs = req.deadline ? Math.max(0, req.deadline - Date.now()) : config.requestTimeout * 1000;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, totalMs);
  const onClientGone = () => ac.abort();
  clientSignal.addEventListener('abort', onClientGone, { once: true });
  const started = Date.now();
  let ended = false;
  let tokens = 0;
  try {
    for await (const ev of engine.generate(req, ac.signal)) {
      if (ev.type === 'token' || ev.type === 'reasoning') tokens++;
      if (ev.type === 'done' || ev.type === 'error') {
        ended = true;
        if (ev.type === 'done' && ev.finishReason === 'cancelled' && timedOut) {
          yield { type: 'error', error: new GlimpseError('request_timeout', `The request took longer than ${Math.round(totalMs / 1000)} s and was stopped.`) };
        } else {
          yield ev;
        }
        break;
      }
      yield ev;
    }
    if (!ended) {
      ended = true;
      if (timedOut) yield { type: 'error', error: new GlimpseError('request_timeout', `The request took longer than ${Math.round(totalMs / 1000)} s and was stopped.`) };
      else if (ac.signal.aborted) yield { type: 'done', finishReason: 'cancelled' };
      else yield { type: 'error', error: new GlimpseError('engine_error', 'The engine ended the stream without finishing the answer.') };
    }
  } catch (err) {
    if (!ended) {
      ended = true;
      const error = toGlimpseError(err);
      if (error.code === 'internal_error') logger.error({ err, reqId: req.id }, 'engine threw');
      yield { type: 'error', error };
    }
  } finally {
    clearTimeout(timer);
    clientSignal.removeEventListener('abort', onClientGone);
    // Leaving early (client gone, consumer stopped) must stop the engine too.
    if (!ended) ac.abort();
    logger.debug({ reqId: req.id, ms: Date.now() - started, tokens, cancelled: ac.signal.aborted }, 'generation finished');
  }
}
