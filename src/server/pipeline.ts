/**
 * The one path from a parsed request to an engine. Every route calls open(); nothing else talks
 * to the engine. Errors found before generation starts are thrown (the route answers with a
 * status); errors after that arrive as the stream's final 'error' event.
 */
import type { Config } from '../config/index.js';
import { GlimpseError, toGlimpseError, type Engine, type GenerateEvent, type GenerateRequest } from '../core/index.js';
import { resolveImages } from '../images/index.js';
import type { Logger } from '../observability/index.js';

export interface GenerationPipeline {
  /** Validate, resolve images, admit; then the event stream, which always ends with done or error. */
  open(req: GenerateRequest, clientSignal: AbortSignal): Promise<AsyncIterable<GenerateEvent>>;
  /** Model ids this server answers to. */
  modelIds(): string[];
}

export function createPipeline(config: Config, engine: Engine, logger: Logger): GenerationPipeline {
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
    async open(req, clientSignal) {
      checkModel(req);
      checkEngine();
      if (clientSignal.aborted) throw new GlimpseError('request_timeout', 'The client went away before the request started.');
      await resolveImages(req, config, clientSignal);
      return guardedStream(req, engine, clientSignal, config, logger);
    },
  };
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
