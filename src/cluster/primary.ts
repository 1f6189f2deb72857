/**
 * `glimpse serve --workers N`: the primary process. It serves no HTTP itself; it forks N worker
 * processes that share the one port through Node's cluster module, hands each the validated
 * config, restarts a worker that dies (with backoff), drains them all on SIGTERM, gathers
 * /metrics across them, and, for the embedded engine, owns the one copy of the model.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.js';
import { createEngine } from '../engines/index.js';
import type { Logger } from '../observability/index.js';
import { createPrimaryMetrics } from '../observability/cluster-metrics.js';
import { createModelHost, type ModelHost } from './model-host.js';
import { isGlimpseMessage, type PrimaryMessage, type WorkerMessage } from './protocol.js';
import { onReload } from '../cli/reload-signal.js';

/** Restart backoff: the first restart waits this long, doubling per crash in the last minute, up to the cap. */
const RESTART_BASE_MS = 250;
const RESTART_MAX_MS = 10_000;
const CRASH_WINDOW_MS = 60_000;
/** Past the grace period, a worker that has not exited is killed (it lost track of something). */
const EXIT_MARGIN_MS = 10_000;

/** The worker entry beside this file, as it exists here (.ts from source, .js when built). */
function workerEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return join(dirname(here), 'worker-main' + (here.endsWith('.ts') ? '.ts' : '.js'));
}

/**
 * What a worker runs. Settings that mean "the machine's cores" are shared out between the workers
 * rather than each taking them all.
 */
export function workerConfig(config: Config, workers: number, cores: number): Config {
  const decodes = config.images.maxConcurrentDecodes || Math.max(1, Math.floor(cores / workers));
  return { ...config, images: { ...config.images, maxConcurrentDecodes: decodes } };
}

export async function runPrimary(config: Config, logger: Logger, workers: number): Promise<number> {
  const perWorker = workerConfig(config, workers, availableParallelism());
  // The model loads once, here; workers reach it over IPC (model-host.ts says why).
  const host: ModelHost | undefined =
    config.engine === 'embedded'
      ? createModelHost(createEngine(config, logger), logger, () => Object.values(cluster.workers ?? {}) as Worker[])
      : undefined;
  const slots = new Map<Worker, number>();
  /** Workers that have bound the port: the ones a reload is passed to. */
  const listening = new Set<Worker>();
  const metrics = createPrimaryMetrics(() => slots.size);
  let stopping = false;
  let everListened = false;
  let exitCode = 0;
  const crashes: number[] = [];
  const pendingRestarts = new Set<NodeJS.Timeout>();

  if (!config.redisUrl) {
    logger.warn(
      { workers },
      'several workers without --redis-url: each keeps its own answer cache, quota counts, stored responses (previous_response_id is found only by the worker that stored it) and queue; jobs, files and batches are kept by worker 1 (the others forward to it)',
    );
  }

  // 'advanced' serialization: image pixels cross as Buffers (structured clone), not JSON arrays.
  cluster.setupPrimary({ exec: workerEntry(), args: [], serialization: 'advanced' });

  const fork = (slot: number) => {
    const worker = cluster.fork();
    slots.set(worker, slot);
    worker.on('message', (msg: unknown) => {
      if (!isGlimpseMessage<WorkerMessage>(msg)) return;
      if (msg.type === 'glimpse:hello') {
        const setup: PrimaryMessage = {
          type: 'glimpse:setup',
          config: perWorker,
          worker: slot,
          ...(host ? { engine: host.setupSnapshot() } : {}),
        };
        worker.send(setup, undefined, () => {});
      } else if (msg.type === 'glimpse:metrics') metrics.answer(worker, msg);
    });
    host?.attach(worker);
  };

  return await new Promise<number>((resolve) => {
    const finishIfDone = () => {
      if (!stopping || slots.size) return;
      void (host?.close() ?? Promise.resolve()).then(
        () => resolve(exitCode),
        (err: unknown) => {
          logger.error({ err }, 'error while closing the engine');
          resolve(1);
        },
      );
    };
    const stop = (why: string, code = 0) => {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      logger.info({ signal: why }, 'shutting down: draining every worker');
      for (const t of pendingRestarts) clearTimeout(t);
      pendingRestarts.clear();
      for (const worker of slots.keys()) {
        worker.process.kill('SIGTERM');
        setTimeout(() => worker.process.kill('SIGKILL'), config.graceShutdownSeconds * 1000 + EXIT_MARGIN_MS).unref();
      }
      finishIfDone();
    };

    cluster.on('listening', (worker, address) => {
      if (!everListened)
        logger.info(
          { workers, port: address.port },
          `glimpse serving on http://${config.host}:${address.port} with ${workers} worker processes`,
        );
      everListened = true;
      listening.add(worker);
      logger.debug({ worker: slots.get(worker), pid: worker.process.pid }, 'worker listening');
    });
    cluster.on('exit', (worker, code, signal) => {
      const slot = slots.get(worker)!;
      slots.delete(worker);
      listening.delete(worker);
      host?.detach(worker);
      if (stopping) {
        if (code !== 0 && code !== null) exitCode = 1;
        finishIfDone();
        return;
      }
      // Before any worker could listen, a crash is the config or the port, not bad luck: stop like a single process would.
      if (!everListened) {
        logger.fatal({ worker: slot, code, signal }, 'a worker exited before serving; stopping');
        stop('startup failure', 1);
        return;
      }
      const now = Date.now();
      while (crashes.length && now - crashes[0] > CRASH_WINDOW_MS) crashes.shift();
      crashes.push(now);
      const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (crashes.length - 1));
      logger.error(
        { worker: slot, pid: worker.process.pid, code, signal, restartInMs: delay },
        'worker exited unasked; starting another',
      );
      const timer = setTimeout(() => {
        pendingRestarts.delete(timer);
        metrics.workerRestarted();
        fork(slot);
      }, delay);
      pendingRestarts.add(timer);
    });

    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // Every worker that serves re-reads the API keys file; one still starting reads it as it starts.
    onReload(() => {
      for (const worker of slots.keys()) if (listening.has(worker)) worker.process.kill('SIGHUP');
    });
    for (let slot = 1; slot <= workers; slot++) fork(slot);
  });
}
