/** How glimpse starts a worker thread from compiled JavaScript or from TypeScript source. */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A worker running the module `name` (without extension) beside `callerUrl` (the caller's
 * import.meta.url). Compiled, that is `name.js`. From TypeScript source (dev, tests) a tiny eval'd
 * bootstrap registers tsx inside the worker first: Node 20 does not apply the parent's --import
 * hooks to a worker's entry module.
 */
export function startWorker(callerUrl: string, name: string, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, callerUrl), { execArgv: [], ...options });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { execArgv: [], ...options, eval: true });
}
