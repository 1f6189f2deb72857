/**
 * The model workers: starting them, handing each one job at a time, relaying their messages to the
 * job's channel, stopping a job through shared memory, and noticing a worker that dies. Nothing
 * waits here: the scheduler in front is the only queue, and admits against capacity(). What to
 * do about a dead worker is not decided here: the pool ends its job and tells `onCrash`.
 *
 * Capacity (what the scheduler admits against) is the number of workers that are loaded, warmed
 * and not retiring, less those still unwinding a generation they were told to stop: the caller
 * has already let go of that request (client gone, deadline), so counting its worker as busy on
 * its behalf would let one more in than can run.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Config } from '../../config/index.js';
import { GlimpseError, type GenerateEvent } from '../../core/index.js';
import type { Logger } from '../../observability/index.js';
import { finish, type Job } from './job.js';
import type { LoadedInfo, WorkerInit, WorkerToMain } from './protocol.js';
import { awaitWarmUp } from './warmup.js';
import { startWorkerThread } from './worker-entry.js';

interface Slot {
  index: number;
  worker: Worker;
  /** Int32Array over the worker's shared stop flag: 1 stops its current generation at the next step. */
  cancel: Int32Array;
  job: Job | null;
  loaded: boolean;
  /** Loaded and through its warm-up (or none is configured): it counts toward capacity. */
  warm: boolean;
  /** Set when the pool itself ends the worker (shutdown), so its exit is not a crash. */
  retiring: boolean;
  onLoad: ((err: string | null) => void) | null;
}

export interface WorkerPoolOptions {
  config: Pick<Config, 'embeddedWorkers' | 'embeddedThreads' | 'embeddedVisionBatch'>;
  logger: Logger;
  modelDir: string;
  dtype: string | null;
  device: 'cpu' | 'cuda';
  /** Worker `index` died on its own; its job (if any) has already been ended with engine_error. */
  onCrash: (index: number, exitCode: number) => void;
  /** capacity() may have grown: a worker finished warming up, or one finished unwinding a stopped job. */
  onCapacityGrew: () => void;
}

export class WorkerPool {
  private slots: Slot[] = [];
  /** What the first worker to load reported about the model. */
  loadedInfo: LoadedInfo | null = null;

  constructor(private readonly opts: WorkerPoolOptions) {}

  /** Start worker `index` (replacing any before it); resolves null when its model is loaded, or the failure message. */
  spawn(index: number): Promise<string | null> {
    const { config, modelDir, dtype, device } = this.opts;
    const cancelFlag = new SharedArrayBuffer(4);
    const init: WorkerInit = {
      modelDir,
      dtype,
      device,
      visionBatch: config.embeddedVisionBatch,
      // onnxruntime's threads are shared out evenly, so workers do not fight over cores.
      intraOpThreads:
        config.embeddedThreads > 0
          ? config.embeddedThreads
          : Math.max(1, Math.floor(availableParallelism() / config.embeddedWorkers)),
      cancelFlag,
    };
    const worker = startWorkerThread(index, init);
    const slot: Slot = {
      index,
      worker,
      cancel: new Int32Array(cancelFlag),
      job: null,
      loaded: false,
      warm: false,
      retiring: false,
      onLoad: null,
    };
    this.slots[index] = slot;
    const loaded = new Promise<string | null>((resolve) => (slot.onLoad = resolve));
    worker.on('message', (msg: WorkerToMain) => this.onMessage(slot, msg));
    worker.on('error', (err) => this.opts.logger.error({ err, worker: index }, 'embedded model worker error'));
    worker.on('exit', (code) => this.onExit(slot, code));
    return loaded;
  }

  get size(): number {
    return this.slots.length;
  }

  /** Generations the workers can run at once now (see the module comment). */
  capacity(): number {
    let n = 0;
    for (const s of this.slots) if (s.warm && !s.retiring && !s.job?.stopped) n++;
    return n;
  }

  /**
   * Run `job` as worker `index`'s warm-up (none when `job` is null), then count the worker toward
   * capacity. A failed warm-up does not keep a loaded worker out (a broken one shows itself on
   * the next request); it rejects after the worker is counted, for start() to report.
   */
  async warm(index: number, job: Job | null): Promise<void> {
    const slot = this.slots[index];
    if (!slot?.loaded) return;
    let failure: unknown;
    if (job) {
      this.post(slot, job);
      await awaitWarmUp(job).catch((err: unknown) => (failure = err));
    }
    // The worker may have died during its warm-up and been replaced: this slot is not the one to count.
    if (this.slots[index] !== slot || !slot.loaded || slot.retiring) return;
    slot.warm = true;
    this.opts.onCapacityGrew();
    if (failure) throw failure;
  }

  /** Whether any worker has its model loaded; with `except`, any other than that one. */
  anyLoaded(except?: number): boolean {
    return this.slots.some((s) => s.index !== except && s.loaded);
  }

  /** Start `job` on a free warmed worker; false when there is none (the job is left as it was). */
  run(job: Job): boolean {
    const slot = this.slots.find((s) => s.warm && !s.job && !s.retiring);
    if (!slot) return false;
    this.post(slot, job);
    return true;
  }

  private post(slot: Slot, job: Job): void {
    job.startedAt = Date.now();
    slot.job = job;
    job.worker = slot.index;
    Atomics.store(slot.cancel, 0, 0);
    slot.worker.postMessage(job.msg, job.transfer);
  }

  /** Ask for a stop: a running job ends at the worker's next decoding step, one not started at once. */
  stop(job: Job): void {
    if (job.finished) return;
    job.stopped = true;
    if (job.worker !== null) {
      const slot = this.slots[job.worker];
      if (slot?.job === job) Atomics.store(slot.cancel, 0, 1);
      return;
    }
    finish(job, { type: 'done', finishReason: 'cancelled' });
  }

  /** End every running job with `terminal` (shutdown). */
  endAll(terminal: GenerateEvent): void {
    for (const slot of this.slots) if (slot.job) finish(slot.job, terminal);
  }

  /** Test hook: worker `index` dies from an uncaught exception at the end of its current decoding step. */
  simulateCrash(index: number): void {
    this.slots[index]?.worker.postMessage({ type: 'simulate_crash' });
  }

  /**
   * Ask every worker to stop and exit on its own; terminate() only as a last resort, because
   * ending a thread while onnxruntime runs native work on it aborts the whole process.
   */
  async stopWorkers(graceMs = 10_000): Promise<void> {
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

  private onMessage(slot: Slot, msg: WorkerToMain): void {
    if (msg.type === 'loaded') {
      slot.loaded = true;
      this.loadedInfo ??= msg.info;
      slot.onLoad?.(null);
      slot.onLoad = null;
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
        if (!job.finished)
          job.events.push({ type: 'token', text: msg.text, ...(msg.logprobs ? { logprobs: msg.logprobs } : {}) });
        return;
      case 'done':
        // Logged at the end rather than at the start: a message during prefill would wake this thread while the model needs every core.
        this.opts.logger.debug(
          { reqId: msg.id, worker: slot.index, ...msg.usage, ms: Date.now() - job.startedAt },
          'embedded generation done',
        );
        job.events.push({ type: 'usage', usage: msg.usage });
        finish(job, { type: 'done', finishReason: job.stopped ? 'cancelled' : msg.finishReason });
        break;
      case 'failed':
        finish(job, {
          type: 'error',
          error: new GlimpseError(
            msg.code,
            msg.message,
            msg.code === 'context_length_exceeded' ? { param: 'messages' } : {},
          ),
        });
        break;
    }
    slot.job = null;
    Atomics.store(slot.cancel, 0, 0);
    // A stopped job's worker did not count while it unwound; now it does again.
    if (job.stopped) this.opts.onCapacityGrew();
  }

  private onExit(slot: Slot, code: number): void {
    slot.onLoad?.(`the model worker exited (code ${code}) while loading`);
    slot.onLoad = null;
    if (slot.retiring || this.slots[slot.index] !== slot) return;
    const job = slot.job;
    slot.job = null;
    slot.loaded = false;
    slot.warm = false;
    if (job) {
      finish(job, {
        type: 'error',
        error: new GlimpseError(
          'engine_error',
          `The model worker stopped unexpectedly (exit code ${code}) during this request; it is being restarted.`,
        ),
      });
    }
    this.opts.onCrash(slot.index, code);
  }
}
