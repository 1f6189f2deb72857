/** How a model worker thread is started, from compiled JavaScript or from TypeScript source. */
import { Worker } from 'node:worker_threads';
import type { WorkerInit } from './protocol.js';

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

/** A new model worker thread; it loads the model and then says 'loaded' or 'load_failed'. */
export function startWorkerThread(index: number, init: WorkerInit): Worker {
  const entry = workerEntry();
  return new Worker(entry.file, { workerData: init, eval: entry.eval, execArgv: [], name: `glimpse-model-${index}` });
}
