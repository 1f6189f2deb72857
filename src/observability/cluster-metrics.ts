/**
 * /metrics across `--workers N`: a scrape lands on whichever worker the kernel or the primary
 * hands the connection to, so a per-process answer would make every series blink in and out of
 * Prometheus (a series missing from one scrape is marked stale). Instead the worker that took the
 * scrape asks the primary, which gathers every worker's registry with prom-client's
 * AggregatorRegistry (counters and histograms summed, gauges by each one's `aggregator`) and adds
 * its own gauges about the workers.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';

type Reply = { type: 'glimpse:metrics'; id: number; text?: string; error?: string };
const isReply = (msg: unknown): msg is Reply =>
  typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === 'glimpse:metrics';

let viaPrimary = false;
let asked = 0;
const waiting = new Map<number, { resolve(text: string): void; reject(err: Error): void }>();

/**
 * Called once in an HTTP worker before its app is built: the registry createMetrics makes is then
 * the one the primary gathers, and /metrics answers with the whole cluster's numbers.
 */
export function answerMetricsThroughPrimary(): void {
  if (viaPrimary || !cluster.isWorker) return;
  viaPrimary = true;
  process.on('message', (msg: unknown) => {
    if (!isReply(msg)) return;
    const w = waiting.get(msg.id);
    waiting.delete(msg.id);
    if (msg.text !== undefined) w?.resolve(msg.text);
    else w?.reject(new Error(msg.error ?? 'no metrics'));
  });
  process.on('disconnect', () => {
    for (const w of waiting.values()) w.reject(new Error('the primary process is gone'));
    waiting.clear();
  });
}

/** Make `registry` the one this process gives the primary (a no-op outside a cluster worker). */
export function shareRegistry(registry: Registry): void {
  if (!viaPrimary) return;
  AggregatorRegistry.setRegistries([registry]);
  // prom-client answers the primary's requests from a listener its constructor installs.
  new AggregatorRegistry();
}

/** The text /metrics serves: this process's registry, or the cluster's through the primary. */
export function metricsText(registry: Registry): Promise<string> {
  if (!viaPrimary) return registry.metrics();
  return new Promise((resolve, reject) => {
    const id = ++asked;
    waiting.set(id, { resolve, reject });
    process.send!({ type: 'glimpse:metrics', id }, undefined, undefined, (err) => {
      if (!err) return;
      waiting.delete(id);
      reject(err);
    });
  });
}

export interface PrimaryMetrics {
  /** Answer a worker that asked for the cluster's metrics. */
  answer(worker: Worker, msg: unknown): void;
  workerRestarted(): void;
}

/** The primary's half: gathers on request, and counts the workers it runs and restarts. */
export function createPrimaryMetrics(liveWorkers: () => number): PrimaryMetrics {
  const aggregator = new AggregatorRegistry();
  const own = new Registry();
  new Gauge({
    name: 'glimpse_cluster_workers',
    help: 'HTTP worker processes running now (--workers).',
    registers: [own],
    collect() {
      this.set(liveWorkers());
    },
  });
  const restarts = new Counter({
    name: 'glimpse_cluster_worker_restarts_total',
    help: 'HTTP worker processes started again after one exited unasked (crash, kill).',
    registers: [own],
  });
  return {
    answer(worker, msg) {
      if (!isReply(msg)) return;
      const reply = (body: Omit<Reply, 'type' | 'id'>) => {
        if (worker.isConnected()) worker.send({ type: 'glimpse:metrics', id: msg.id, ...body }, undefined, () => {});
      };
      Promise.all([aggregator.clusterMetrics(), own.metrics()]).then(
        ([all, mine]) => reply({ text: all + mine }),
        (err: Error) => reply({ error: err.message }),
      );
    },
    workerRestarted() {
      restarts.inc();
    },
  };
}
