/**
 * The embedded engine: transformers.js + onnxruntime-node in worker threads.
 *
 * The main thread only routes messages: it resolves/downloads the model, keeps a small pool of
 * workers (each with its own model copy, one generation at a time), queues requests FIFO,
 * relays tokens, and turns client disconnects and deadlines into a shared-memory stop flag that
 * the worker's decoding loop reads every step. A worker that dies is noticed ('exit'), its
 * request gets an engine_error, and a fresh worker is started and warmed.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Config } from '../../config/index.js';
import { servedModelName } from '../../config/index.js';
import {
  GlimpseError,
  templateVariables,
  type Engine,
  type EngineHealth,
  type EngineInfo,
  type GenerateEvent,
  type GenerateRequest,
} from '../../core/index.js';
import type { Logger } from '../../observability/index.js';
import { formatBytes, formatProgress, type DownloadProgress } from './download.js';
import { defaultCacheDir, ModelUnavailableError, resolveModel, type ResolvedModel } from './model-source.js';
import type { LoadedInfo, WorkerGenerate, WorkerImage, WorkerInit, WorkerPart, WorkerToMain } from './protocol.js';

export interface EmbeddedEngineOptions {
  /** Where the download progress bar goes; default process.stderr (a live bar only when it is a TTY). */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
}

type State = 'idle' | 'loading' | 'ready' | 'failed' | 'closed';

/** More crashes than this within a minute means something is wrong that a restart will not fix. */
const MAX_CRASHES_PER_MINUTE = 5;

/**
 * A minimal async queue: the worker pushes, generate() pulls. `merge` may fold the next queued
 * item into the one being taken: when the consumer lags (slow client, busy event loop), text
 * pieces that piled up go out as one event instead of many, so a backlog drains faster.
 */
class EventChannel<T> implements AsyncIterable<T> {
  constructor(private readonly merge: (a: T, b: T) => T | null = () => null) {}

  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private closed = false;

  push(item: T): void {
    if (this.closed) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  close(): void {
    this.closed = true;
    if (this.waiting && !this.items.length) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: undefined as never, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length) {
          let value: T = this.items.shift() as T;
          while (this.items.length) {
            const merged = this.merge(value, this.items[0]!);
            if (merged === null) break;
            value = merged;
            this.items.shift();
          }
          return Promise.resolve({ value, done: false });
        }
        if (this.closed) return Promise.resolve({ value: undefined as never, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
    };
  }
}

interface Job {
  msg: WorkerGenerate;
  transfer: ArrayBuffer[];
  events: EventChannel<GenerateEvent>;
  slot: Slot | null;
  /** Why the engine asked the worker to stop, if it did. */
  stopReason: 'cancelled' | 'timeout' | null;
  finished: boolean;
  enqueuedAt: number;
}

interface Slot {
  index: number;
  worker: Worker;
  cancel: Int32Array;
  job: Job | null;
  loaded: boolean;
  /** Set when the engine itself ends the worker (close), so its exit is not a crash. */
  retiring: boolean;
  onLoad: ((err: string | null) => void) | null;
}

export class EmbeddedEngine implements Engine {
  /** The pipeline hands over decoded pixels: no encode, no second decode in the worker. */
  readonly imageInput = 'pixels' as const;
  readonly supportsLogprobs = true;
  private state: State = 'idle';
  private reason: string | undefined = 'The model has not started loading yet.';
  private slots: Slot[] = [];
  private queue: Job[] = [];
  private model: ResolvedModel | null = null;
  private loadedInfo: LoadedInfo | null = null;
  private device: 'cpu' | 'cuda' = 'cpu';
  private restarts = 0;
  private recentCrashes: number[] = [];
  /** Reached ready once: from then on a crashed worker is restarted and requests wait for it. */
  private everReady = false;
  private readonly abort = new AbortController();
  private lastProgressLog = 0;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly options: EmbeddedEngineOptions = {},
  ) {}

  info(): EngineInfo {
    const name = servedModelName(this.config);
    const contextLength = Math.min(this.config.maxContextLength, this.loadedInfo?.contextLength ?? Infinity);
    return {
      engine: 'embedded',
      model: name,
      models: [{ id: name, ownedBy: 'glimpse', contextLength: Number.isFinite(contextLength) ? contextLength : undefined }],
      device: this.device,
      simulated: false,
    };
  }

  health(): EngineHealth {
    switch (this.state) {
      case 'ready':
        return { status: 'healthy', modelLoaded: true, ready: true };
      case 'failed':
      case 'closed':
        return { status: 'unhealthy', modelLoaded: false, ready: false, reason: this.reason };
      default:
        return { status: 'loading', modelLoaded: this.slots.some((s) => s.loaded), ready: false, reason: this.reason };
    }
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'loading';
    try {
      this.device = resolveDevice(this.config.device);
      this.reason = `Looking for model ${this.config.modelPath}.`;
      this.model = await resolveModel({
        modelPath: this.config.modelPath,
        cacheDir: this.config.cacheDir || defaultCacheDir(),
        offline: this.config.offline,
        hubUrl: this.config.hubUrl,
        revision: this.config.modelRevision,
        dtype: this.config.dtype,
        hubToken: process.env.HF_TOKEN || undefined,
        signal: this.abort.signal,
        onProgress: (p) => this.onProgress(p),
      });
      if (this.isClosed()) return;
      this.logger.info({ dir: this.model.dir, source: this.model.source, dtype: this.model.dtype ?? 'model default', device: this.device }, 'embedded model files ready');
      this.reason = `Loading model ${this.config.modelPath} into ${this.config.embeddedWorkers} worker(s).`;
      const count = this.config.embeddedWorkers;
      const results = await Promise.all(Array.from({ length: count }, (_, i) => this.spawn(i)));
      const failure = results.find((r) => r !== null);
      if (failure) throw new ModelUnavailableError(`The model in ${this.model.dir} could not be loaded: ${failure}`);
      if (this.isClosed()) return;
      if (this.config.warmup) {
        this.reason = 'Warming up: running one short generation before accepting requests.';
        const t0 = Date.now();
        await Promise.all(this.slots.map(() => this.warmUp()));
        this.logger.info({ ms: Date.now() - t0, workers: count }, 'embedded engine warmed up');
      }
      if (this.isClosed()) return;
      this.state = 'ready';
      this.everReady = true;
      this.reason = undefined;
      this.logger.info({ model: this.config.modelPath, device: this.device, loadMs: this.loadedInfo?.loadMs }, 'embedded engine ready');
    } catch (err) {
      if (this.isClosed()) return;
      this.state = 'failed';
      this.reason = err instanceof ModelUnavailableError || err instanceof GlimpseError ? err.message : `The embedded engine failed to start: ${(err as Error)?.message ?? String(err)}.`;
      this.logger.error({ reason: this.reason }, 'embedded engine unavailable');
      await this.stopWorkers();
    }
  }

  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent> {
    // While a crashed worker restarts, requests wait in the queue rather than fail.
    const restarting = this.state === 'loading' && this.everReady;
    if (this.state !== 'ready' && !restarting) {
      const code = this.state === 'loading' || this.state === 'idle' ? 'model_loading' : 'engine_unavailable';
      yield { type: 'error', error: new GlimpseError(code, this.reason ?? 'The embedded engine is not ready.', { headers: code === 'model_loading' ? { 'Retry-After': '5' } : {} }) };
      return;
    }
    let job: Job;
    try {
      job = this.toJob(req);
    } catch (err) {
      yield { type: 'error', error: err instanceof GlimpseError ? err : new GlimpseError('internal_error', 'Internal server error.', { cause: err }) };
      return;
    }
    if (signal.aborted) {
      yield { type: 'done', finishReason: 'cancelled' };
      return;
    }
    const onAbort = (): void => this.stop(job, 'cancelled');
    signal.addEventListener('abort', onAbort, { once: true });
    let deadline: NodeJS.Timeout | undefined;
    if (req.deadline !== undefined) {
      const ms = req.deadline - Date.now();
      if (ms <= 0) {
        signal.removeEventListener('abort', onAbort);
        yield { type: 'error', error: new GlimpseError('request_timeout', 'The request passed its deadline before generation started.') };
        return;
      }
      deadline = setTimeout(() => this.stop(job, 'timeout'), ms);
    }
    this.enqueue(job);
    try {
      for await (const ev of job.events) yield ev;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(deadline);
      // The consumer left early (client gone): stop the worker so the next request can have it.
      if (!job.finished) this.stop(job, 'cancelled');
    }
  }

  async close(): Promise<void> {
    const wasState = this.state;
    this.state = 'closed';
    this.reason = 'The server is shutting down.';
    this.abort.abort();
    for (const job of this.queue.splice(0)) this.finish(job, { type: 'error', error: new GlimpseError('shutting_down', 'The server is shutting down.') });
    for (const slot of this.slots) if (slot.job) this.finish(slot.job, { type: 'error', error: new GlimpseError('shutting_down', 'The server is shutting down.') });
    if (wasState !== 'idle') await this.stopWorkers();
  }

  /**
   * Test hook: worker `index` dies from an uncaught exception at the end of its current decoding
   * step, as a bug in the model code would, so tests can prove the engine notices and recovers.
   */
  simulateWorkerCrash(index = 0): void {
    this.slots[index]?.worker.postMessage({ type: 'simulate_crash' });
  }

  // ---- internals -------------------------------------------------------------------------

  /** close() may run while start() awaits; a method call keeps TypeScript from narrowing the state away. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private toJob(req: GenerateRequest): Job {
    if (!req.messages.length) throw new GlimpseError('empty_messages', 'The request has no messages.', { param: 'messages' });
    const images: WorkerImage[] = [];
    const transfer: ArrayBuffer[] = [];
    // Copy into a buffer of its own: Node's small Buffers share a pooled ArrayBuffer that must not be transferred.
    const own = (d: Buffer): ArrayBuffer => {
      const b = d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength) as ArrayBuffer;
      transfer.push(b);
      return b;
    };
    const messages = req.messages.map((m) => ({
      role: m.role,
      content: m.content.map((p): WorkerPart => {
        if (p.type === 'text') return { type: 'text', text: p.text };
        if (!p.resolved) throw new GlimpseError('internal_error', 'An image reached the engine before the image pipeline resolved it.');
        const { rgb, data } = p.resolved;
        // Decoded pixels when the pipeline has them (the normal path); encoded bytes are decoded in the worker.
        if (rgb) images.push({ rgb: own(rgb.data), width: rgb.width, height: rgb.height });
        else if (data) images.push({ encoded: own(data) });
        else throw new GlimpseError('internal_error', 'A resolved image reached the engine with neither pixels nor bytes.');
        return { type: 'image', index: images.length - 1 };
      }),
    }));
    const s = req.sampling;
    return {
      msg: {
        type: 'generate',
        id: req.id,
        messages,
        images,
        // The model's template reads these as variables (a template without them ignores them).
        templateArgs: templateVariables(req),
        maxTokens: s.maxTokens,
        temperature: s.temperature,
        topP: s.topP,
        ...(req.logprobs ? { logprobs: req.logprobs.top } : {}),
        extra: { topK: s.topK, minP: s.minP, presencePenalty: s.presencePenalty, frequencyPenalty: s.frequencyPenalty, repetitionPenalty: s.repetitionPenalty },
        seed: s.seed ?? randomInt(0, 2 ** 31),
        stop: s.stop,
        maxContextLength: this.config.maxContextLength,
        streamIntervalMs: this.config.streamIntervalMs,
      },
      transfer,
      events: new EventChannel<GenerateEvent>(mergeTokens),
      slot: null,
      stopReason: null,
      finished: false,
      enqueuedAt: Date.now(),
    };
  }

  private enqueue(job: Job): void {
    job.enqueuedAt = Date.now();
    this.queue.push(job);
    this.dispatch();
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (!this.queue.length) return;
      if (!slot.loaded || slot.job || slot.retiring) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      job.slot = slot;
      Atomics.store(slot.cancel, 0, 0);
      slot.worker.postMessage(job.msg, job.transfer);
    }
  }

  /** Ask for a stop: a queued job ends at once; a running one at the worker's next decoding step. */
  private stop(job: Job, why: 'cancelled' | 'timeout'): void {
    if (job.finished) return;
    job.stopReason ??= why;
    if (job.slot) {
      Atomics.store(job.slot.cancel, 0, 1);
      return;
    }
    const at = this.queue.indexOf(job);
    if (at !== -1) this.queue.splice(at, 1);
    this.finish(job, why === 'timeout' ? timeoutEvent() : { type: 'done', finishReason: 'cancelled' });
  }

  private finish(job: Job, terminal: GenerateEvent): void {
    if (job.finished) return;
    job.finished = true;
    job.events.push(terminal);
    job.events.close();
  }

  private onMessage(slot: Slot, msg: WorkerToMain): void {
    if (msg.type === 'loaded') {
      slot.loaded = true;
      this.loadedInfo ??= msg.info;
      slot.onLoad?.(null);
      slot.onLoad = null;
      this.dispatch();
      return;
    }
    if (msg.type === 'load_failed') {
      slot.onLoad?.(msg.message);
      slot.onLoad = null;
      return;
    }
    const job = slot.job;
    if (!job || job.msg.id !== msg.id) return;
    switch (msg.type) {
      case 'token':
        if (!job.finished) job.events.push({ type: 'token', text: msg.text, ...(msg.logprobs ? { logprobs: msg.logprobs } : {}) });
        return;
      case 'done':
        // Logged at the end rather than at the start: a message during prefill would wake this thread while the model needs every core.
        this.logger.debug({ reqId: msg.id, worker: slot.index, ...msg.usage, ms: Date.now() - job.enqueuedAt }, 'embedded generation done');
        job.events.push({ type: 'usage', usage: msg.usage });
        this.finish(job, job.stopReason === 'timeout' ? timeoutEvent() : { type: 'done', finishReason: job.stopReason === 'cancelled' ? 'cancelled' : msg.finishReason });
        break;
      case 'failed':
        this.finish(job, { type: 'error', error: new GlimpseError(msg.code, msg.message, msg.code === 'context_length_exceeded' ? { param: 'messages' } : {}) });
        break;
    }
    slot.job = null;
    Atomics.store(slot.cancel, 0, 0);
    this.dispatch();
  }

  /** Start worker `index`; resolves null when its model is loaded, or the failure message. */
  private spawn(index: number): Promise<string | null> {
    const entry = workerEntry();
    const cancelFlag = new SharedArrayBuffer(4);
    const workers = this.config.embeddedWorkers;
    const init: WorkerInit = {
      modelDir: this.model!.dir,
      dtype: this.model!.dtype,
      device: this.device,
      visionBatch: this.config.embeddedVisionBatch,
      intraOpThreads: this.config.embeddedThreads > 0 ? this.config.embeddedThreads : Math.max(1, Math.floor(availableParallelism() / workers)),
      cancelFlag,
    };
    const worker = new Worker(entry.file, { workerData: init, eval: entry.eval, execArgv: [], name: `glimpse-model-${index}` });
    const slot: Slot = { index, worker, cancel: new Int32Array(cancelFlag), job: null, loaded: false, retiring: false, onLoad: null };
    this.slots[index] = slot;
    const loaded = new Promise<string | null>((resolve) => (slot.onLoad = resolve));
    worker.on('message', (msg: WorkerToMain) => this.onMessage(slot, msg));
    worker.on('error', (err) => this.logger.error({ err, worker: index }, 'embedded model worker error'));
    worker.on('exit', (code) => this.onExit(slot, code));
    return loaded;
  }

  private onExit(slot: Slot, code: number): void {
    slot.onLoad?.(`the model worker exited (code ${code}) while loading`);
    slot.onLoad = null;
    if (slot.retiring || this.isClosed() || this.slots[slot.index] !== slot) return;
    const job = slot.job;
    slot.job = null;
    slot.loaded = false;
    if (job) {
      this.finish(job, {
        type: 'error',
        error: new GlimpseError('engine_error', `The model worker stopped unexpectedly (exit code ${code}) during this request; it is being restarted.`),
      });
    }
    // Crashes during the first start are start-up failures (start() reports them); later ones restart the worker.
    if (!this.everReady || this.state === 'failed') return;
    const now = Date.now();
    this.recentCrashes = this.recentCrashes.filter((t) => now - t < 60_000);
    this.recentCrashes.push(now);
    this.restarts++;
    if (this.recentCrashes.length > MAX_CRASHES_PER_MINUTE) {
      this.fail(`The model worker crashed ${this.recentCrashes.length} times within a minute, so glimpse stopped restarting it; check the logs for the cause and restart the server.`);
      return;
    }
    this.logger.error({ worker: slot.index, code, restarts: this.restarts }, 'embedded model worker died; restarting it');
    if (!this.slots.some((s) => s !== slot && s.loaded)) {
      this.state = 'loading';
      this.reason = 'The model worker stopped unexpectedly and is restarting.';
    }
    void this.spawn(slot.index).then(async (err) => {
      if (this.isClosed() || this.state === 'failed') return;
      if (err) {
        this.fail(`The model worker stopped unexpectedly and could not be restarted: ${err}`);
        return;
      }
      if (this.config.warmup) await this.warmUp().catch(() => undefined);
      if (this.state === 'loading' && this.slots.some((s) => s.loaded)) {
        this.state = 'ready';
        this.reason = undefined;
      }
      this.dispatch();
    });
  }

  /** Give up: every waiting request gets engine_unavailable, and health says why. */
  private fail(reason: string): void {
    this.state = 'failed';
    this.reason = reason;
    this.logger.error({ reason }, 'embedded engine unavailable');
    for (const job of this.queue.splice(0)) this.finish(job, { type: 'error', error: new GlimpseError('engine_unavailable', reason) });
    void this.stopWorkers();
  }

  /** One short real generation through the path a request takes (pixels, processor, vision encoder, decoder). */
  private async warmUp(): Promise<void> {
    const job = this.toJob({
      id: `warmup-${randomInt(0, 2 ** 31)}`,
      model: 'warmup',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { kind: 'bytes', data: Buffer.alloc(0) }, resolved: { rgb: { data: Buffer.alloc(64 * 48 * 3, 128), width: 64, height: 48 }, width: 64, height: 48, sourceFormat: 'png', sha256: '' } },
            { type: 'text', text: 'Describe this image.' },
          ],
        },
      ],
      sampling: { maxTokens: 2, temperature: 0, topP: 1, stop: [] },
      stream: false,
    });
    this.enqueue(job);
    for await (const ev of job.events) {
      if (ev.type === 'error') throw new ModelUnavailableError(`The warm-up generation failed: ${ev.error.message}`);
    }
  }

  /**
   * Ask every worker to stop and exit on its own; terminate() only as a last resort, because
   * ending a thread while onnxruntime runs native work on it aborts the whole process.
   */
  private async stopWorkers(graceMs = 10_000): Promise<void> {
    await Promise.all(
      this.slots.map(async (slot) => {
        slot.retiring = true;
        Atomics.store(slot.cancel, 0, 1);
        const exited = new Promise<void>((resolve) => slot.worker.once('exit', () => resolve()));
        slot.worker.postMessage({ type: 'shutdown' });
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
        if ((await Promise.race([exited, late])) === 'late') await slot.worker.terminate();
        clearTimeout(timer);
      }),
    );
  }

  private onProgress(p: DownloadProgress): void {
    const name = this.config.modelPath;
    const pct = p.total > 0 ? ` ${Math.floor((p.loaded / p.total) * 100)}%` : '';
    this.reason = `Downloading model ${name}:${pct} (${formatBytes(p.loaded)}${p.total ? ' of ' + formatBytes(p.total) : ''}).`;
    const out = this.options.progressStream ?? process.stderr;
    if (out.isTTY) {
      out.write(`\r\x1b[2K${formatProgress(name, p)}${p.done ? '\n' : ''}`);
      return;
    }
    const now = Date.now();
    if (p.done || now - this.lastProgressLog > 5000) {
      this.lastProgressLog = now;
      this.logger.info({ model: name, loaded: p.loaded, total: p.total, bytesPerSecond: Math.round(p.rate), etaSeconds: p.etaSeconds === null ? null : Math.round(p.etaSeconds) }, formatProgress(name, p));
    }
  }
}

function mergeTokens(a: GenerateEvent, b: GenerateEvent): GenerateEvent | null {
  if (a.type !== 'token' || b.type !== 'token') return null;
  const logprobs = a.logprobs || b.logprobs ? [...(a.logprobs ?? []), ...(b.logprobs ?? [])] : undefined;
  return { type: 'token', text: a.text + b.text, ...(logprobs ? { logprobs } : {}) };
}

function timeoutEvent(): GenerateEvent {
  return { type: 'error', error: new GlimpseError('request_timeout', 'The request passed its deadline; generation was stopped.') };
}

/**
 * The worker runs from compiled JavaScript normally. From TypeScript source (dev, tests) a tiny
 * eval'd bootstrap registers tsx inside the worker first: Node 20 does not apply the parent's
 * --import hooks to a worker's entry module.
 */
function workerEntry(): { file: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { file: new URL('./worker.js', import.meta.url), eval: false };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  return { file: `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`, eval: true };
}

/** Whether onnxruntime-node was installed with its CUDA execution provider (ONNXRUNTIME_NODE_INSTALL=cuda12). */
export function cudaProviderInstalled(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  try {
    const require = createRequire(import.meta.url);
    let dir = dirname(require.resolve('onnxruntime-node'));
    while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
    const binRoot = join(dir, 'bin');
    for (const napi of existsSync(binRoot) ? readdirSync(binRoot) : []) {
      if (existsSync(join(binRoot, napi, 'linux', 'x64', 'libonnxruntime_providers_cuda.so'))) return true;
    }
  } catch {
    /* not installed at all: CPU it is */
  }
  return false;
}

function resolveDevice(requested: 'cpu' | 'cuda' | 'auto'): 'cpu' | 'cuda' {
  if (requested === 'cpu') return 'cpu';
  const cuda = cudaProviderInstalled();
  if (requested === 'cuda' && !cuda) {
    throw new ModelUnavailableError(
      "--device cuda needs onnxruntime-node's CUDA execution provider, which is not installed; fetch it with ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node (CUDA 12 and cuDNN 9 on the machine), or use --device cpu.",
    );
  }
  return cuda ? 'cuda' : 'cpu';
}

