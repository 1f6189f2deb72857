/** How a model worker thread is started. */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../core/worker-thread.js';
import type { WorkerInit } from './protocol.js';

/** A new model worker thread; it loads the model and then says 'loaded' or 'load_failed'. */
export function startWorkerThread(index: number, init: WorkerInit): Worker {
  return startWorker(import.meta.url, 'worker', { workerData: init, name: `glimpse-model-${index}` });
}
