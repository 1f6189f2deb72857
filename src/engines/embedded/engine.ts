/**
 * The embedded engine: transformers.js + onnxruntime-node in worker threads.
 *
 * The main thread only routes messages: it resolves/downloads the model (progress-report.ts),
 * keeps a small pool of workers (worker-pool.ts; each with its own model copy, one generation at
 * a time), relays tokens (channel.ts), and turns a caller that let go (the signal, or a consumer
 * that stops reading: the pipeline's own deadlines end it that way) into a shared-memory stop
 * flag that the worker's decoding loop reads every step. A worker that dies is noticed, its
 * request gets an engine_error, and supervisor.ts restarts and warms a new one.
 */
import type { Config } from '../../config/index.js';
import { servedModelName } from '../../config/index.js';
import {
  GlimpseError,
  type Engine,
  type EngineHealth,
  type EngineInfo,
  type GenerateEvent,
  type GenerateRequest,
  type ModelCard,
} from '../../core/index.js';
import type { Logger } from '../../observability/index.js';
import { resolveDevice } from './device.js';
import { toJob, type Job } from './job.js';
import { defaultCacheDir, ModelUnavailableError, resolveModel } from './model-source.js';
import { DownloadReporter, type ProgressStream } from './progress-report.js';
import { profileFor } from './profiles.js';
import { EngineStatus } from './status.js';
import { Supervisor } from './supervisor.js';
import { warmUpJob } from './warmup.js';
import { WorkerPool } from './worker-pool.js';

export interface EmbeddedEngineOptions {
  /** Where the download progress bar goes; default process.stderr (a live bar only when it is a TTY). */
  progressStream?: ProgressStream;
}

export class EmbeddedEngine implements Engine {
  /** The pipeline hands over decoded pixels: no encode, no second decode in the worker. */
  readonly imageInput = 'pixels' as const;
  readonly supportsLogprobs = true;
  private readonly status = new EngineStatus();
  /** Exists once the model's files are ready. */
  private pool: WorkerPool | null = null;
  private device: 'cpu' | 'cuda' = 'cpu';
  private readonly abort = new AbortController();
  private readonly capacityListeners = new Set<() => void>();

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly options: EmbeddedEngineOptions = {},
  ) {}

  info(): EngineInfo {
    const name = servedModelName(this.config);
    const contextLength = Math.min(this.config.maxContextLength, this.pool?.loadedInfo?.contextLength ?? Infinity);
    return {
      engine: 'embedded',
      model: name,
      models: [
        {
          id: name,
          ownedBy: 'glimpse',
          contextLength: Number.isFinite(contextLength) ? contextLength : undefined,
          ...profileCard(this.config.modelPath),
        },
      ],
      device: this.device,
      simulated: false,
    };
  }

  health(): EngineHealth {
    return this.status.health(this.pool?.anyLoaded() ?? false);
  }

  /**
   * Generations it can run at once now: its live, warmed workers (one generation each). A crashed
   * worker counts again once restarted and warmed; one still unwinding a stopped request does
   * not count until it is free. The model does not matter: this engine serves one.
   */
  capacity(_model?: string): number {
    if (!this.pool || this.status.is('failed') || this.status.is('closed')) return 0;
    return this.pool.capacity();
  }

  /** `listener` runs whenever capacity() may have grown; returns the unsubscribe function. */
  onCapacityChange(listener: () => void): () => void {
    this.capacityListeners.add(listener);
    return () => this.capacityListeners.delete(listener);
  }

  async start(): Promise<void> {
    const status = this.status;
    if (!status.is('idle')) return;
    status.set('loading', `Looking for model ${this.config.modelPath}.`);
    try {
      this.device = resolveDevice(this.config.device);
      const progress = new DownloadReporter(
        this.config.modelPath,
        this.logger,
        this.options.progressStream ?? process.stderr,
        (r) => (status.reason = r),
      );
      const model = await resolveModel({
        modelPath: this.config.modelPath,
        cacheDir: this.config.cacheDir || defaultCacheDir(),
        offline: this.config.offline,
        hubUrl: this.config.hubUrl,
        revision: this.config.modelRevision,
        dtype: this.config.dtype,
        hubToken: process.env.HF_TOKEN || undefined,
        signal: this.abort.signal,
        onProgress: (p) => progress.report(p),
      });
      if (status.is('closed')) return;
      this.logger.info(
        { dir: model.dir, source: model.source, dtype: model.dtype ?? 'model default', device: this.device },
        'embedded model files ready',
      );
      const count = this.config.embeddedWorkers;
      status.reason = `Loading model ${this.config.modelPath} into ${count} worker(s).`;
      const pool = new WorkerPool({
        config: this.config,
        logger: this.logger,
        modelDir: model.dir,
        dtype: model.dtype,
        device: this.device,
        // Workers only crash after they are started, below: by then the supervisor exists.
        onCrash: (index, code) => supervisor.onCrash(index, code),
        onCapacityGrew: () => this.capacityGrew(),
      });
      const supervisor = new Supervisor({
        logger: this.logger,
        status,
        pool,
        warmUp: (index) => this.warmUp(index).catch(() => undefined),
        fail: (reason) => this.fail(reason),
      });
      this.pool = pool;
      const results = await Promise.all(Array.from({ length: count }, (_, i) => pool.spawn(i)));
      const failure = results.find((r) => r !== null);
      if (failure) throw new ModelUnavailableError(`The model in ${model.dir} could not be loaded: ${failure}`);
      if (status.is('closed')) return;
      if (this.config.warmup) status.reason = 'Warming up: running one short generation before accepting requests.';
      const t0 = Date.now();
      await Promise.all(Array.from({ length: count }, (_, i) => this.warmUp(i)));
      if (this.config.warmup) this.logger.info({ ms: Date.now() - t0, workers: count }, 'embedded engine warmed up');
      if (status.is('closed')) return;
      status.set('ready');
      this.logger.info(
        { model: this.config.modelPath, device: this.device, loadMs: pool.loadedInfo?.loadMs },
        'embedded engine ready',
      );
    } catch (err) {
      if (status.is('closed')) return;
      status.set(
        'failed',
        err instanceof ModelUnavailableError || err instanceof GlimpseError
          ? err.message
          : `The embedded engine failed to start: ${(err as Error)?.message ?? String(err)}.`,
      );
      this.logger.error({ reason: status.reason }, 'embedded engine unavailable');
      await this.pool?.stopWorkers();
    }
  }

  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent> {
    const { status, pool } = this;
    // Once ready, a crashed worker restarting does not close the engine: another may be free.
    const restarting = status.is('loading') && status.everReady;
    if (!pool || (!status.is('ready') && !restarting)) {
      const code = status.is('loading') || status.is('idle') ? 'model_loading' : 'engine_unavailable';
      yield {
        type: 'error',
        error: new GlimpseError(code, status.reason ?? 'The embedded engine is not ready.', {
          headers: code === 'model_loading' ? { 'Retry-After': '5' } : {},
        }),
      };
      return;
    }
    let job: Job;
    try {
      job = toJob(req, this.config);
    } catch (err) {
      yield {
        type: 'error',
        error:
          err instanceof GlimpseError
            ? err
            : new GlimpseError('internal_error', 'Internal server error.', { cause: err }),
      };
      return;
    }
    if (signal.aborted) {
      yield { type: 'done', finishReason: 'cancelled' };
      return;
    }
    // No queue here: the scheduler admits against capacity(), so a free worker is waiting.
    if (!pool.run(job)) {
      yield { type: 'error', error: this.noFreeWorker(restarting, req.id) };
      return;
    }
    const onAbort = (): void => pool.stop(job);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const ev of job.events) yield ev;
    } finally {
      signal.removeEventListener('abort', onAbort);
      // The consumer left early (client gone): stop the worker so the next request can have it.
      if (!job.finished) pool.stop(job);
    }
  }

  async close(): Promise<void> {
    const wasIdle = this.status.is('idle');
    this.status.set('closed', 'The server is shutting down.');
    this.abort.abort();
    this.pool?.endAll({ type: 'error', error: new GlimpseError('shutting_down', 'The server is shutting down.') });
    if (!wasIdle) await this.pool?.stopWorkers();
  }

  /**
   * Test hook: worker `index` dies from an uncaught exception at the end of its current decoding
   * step, as a bug in the model code would, so tests can prove the engine notices and recovers.
   */
  simulateWorkerCrash(index = 0): void {
    this.pool?.simulateCrash(index);
  }

  /** Give up: capacity turns 0, requests still running get engine_unavailable, and health says why. */
  private fail(reason: string): void {
    this.status.set('failed', reason);
    this.logger.error({ reason }, 'embedded engine unavailable');
    this.pool?.endAll({ type: 'error', error: new GlimpseError('engine_unavailable', reason) });
    void this.pool?.stopWorkers();
  }

  /**
   * The answer to a generation with no free worker. While the only workers restart it is the
   * moment's truth (503, retry); otherwise the caller went past capacity(), which is its bug.
   */
  private noFreeWorker(restarting: boolean, reqId: string): GlimpseError {
    if (restarting && this.capacity() === 0) {
      return new GlimpseError('model_loading', this.status.reason ?? 'The model worker is restarting.', {
        retryAfterSeconds: 5,
      });
    }
    this.logger.error(
      { reqId, capacity: this.capacity() },
      'embedded generation asked for with every worker busy: the caller must admit against capacity()',
    );
    return new GlimpseError(
      'internal_error',
      'Every model worker is busy: this generation was started beyond what the engine can run at once.',
    );
  }

  /** Worker `index`'s warm-up generation (when configured), after which it counts toward capacity. */
  private warmUp(index: number): Promise<void> {
    return this.pool?.warm(index, this.config.warmup ? warmUpJob(this.config) : null) ?? Promise.resolve();
  }

  private capacityGrew(): void {
    // Called from the worker's message handling: one subscriber's bug must not stop it.
    for (const listener of this.capacityListeners) {
      try {
        listener();
      } catch (err) {
        this.logger.error({ err }, 'capacity listener threw');
      }
    }
  }
}

/** The profile part of the model card, when the model was named by a profile (or its hub id). */
function profileCard(modelPath: string): Pick<ModelCard, 'profile'> {
  const p = profileFor(modelPath);
  if (!p) return {};
  const image = { imageMaxEdge: p.imageMaxEdge, ...(p.gridResize ? { patchGrid: p.patchGrid } : {}) };
  return {
    profile: { name: p.name, description: p.description, tasks: p.tasks, thinks: p.thinks, boxes: p.boxes, ...image },
  };
}
