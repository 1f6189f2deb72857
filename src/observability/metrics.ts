/**
 * Prometheus metrics (prom-client), served at GET /metrics. HTTP traffic is counted in one
 * onResponse hook; generations are observed by wrapping the pipeline's streams, so no route and
 * no engine knows metrics exist. Gauges for queue and in-flight are read from the scheduler at
 * scrape time, so they cannot drift from the truth.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { tap, withIterator, type Engine, type GenerateEvent } from '../core/index.js';
import { imageStats } from '../images/index.js';
import { metricsText, shareRegistry } from './cluster-metrics.js';
import { hasPools, meterPools } from './pool-metrics.js';

/** The slice of the pipeline metrics need; kept structural so observability does not import server/. */
export interface MeteredPipeline {
  /** The opened stream says whether the answer cache held it (`cache`); its events begin with the queue's (`queued`, `admitted`). */
  open(
    req: { model: string },
    signal: AbortSignal,
    opts?: object,
  ): Promise<
    AsyncIterable<GenerateEvent | { type: 'queued' | 'admitted' }> & { readonly cache?: 'hit' | 'miss' | 'bypass' }
  >;
  stats(): {
    inFlight: number;
    queued: number;
    queuedBackground: number;
    maxInFlight: number;
    maxQueue: number;
    admitted: number;
    rejectedFull: number;
    timedOut: number;
    abandoned: number;
    degraded: number;
  };
}

/** The slice of the async job queue metrics read (structural: observability does not import jobs/). */
export interface MeteredJobs {
  /** Jobs this instance's workers ended, by how, and how many run now. */
  stats(): {
    running: number;
    ended: Record<'succeeded' | 'failed' | 'cancelled' | 'handed_back', number>;
    webhooks: Record<'delivered' | 'failed', number>;
  };
  /** Jobs waiting or running across all instances. */
  backlog(): Promise<number>;
}

export interface Metrics {
  registry: Registry;
  /** Wrap a pipeline so every generation it opens is measured. */
  meter<P extends MeteredPipeline>(pipeline: P): P;
  /** Job queue metrics, when jobs are on. */
  meterJobs(jobs: MeteredJobs): void;
  /** Export the API keys in force and the outcomes of keys-file reloads. */
  meterKeys(keys: { size: number; reloads: Record<string, number> }): void;
  /** Count HTTP requests and serve /metrics. */
  register(app: FastifyInstance): void;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function createMetrics(engine: Engine, getStats: () => ReturnType<MeteredPipeline['stats']>): Metrics {
  const registry = new Registry();
  shareRegistry(registry);
  collectDefaultMetrics({ register: registry, prefix: 'glimpse_' });
  // prom-client names these gauges *_total, which Prometheus reserves for counters (promtool
  // flags them); the handle counts are not worth a lint failure on every scrape check.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric('glimpse_' + name);

  const httpRequests = new Counter({
    name: 'glimpse_http_requests_total',
    help: 'HTTP requests answered, by route and status.',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'glimpse_http_request_duration_seconds',
    help: 'Time to answer an HTTP request (headers and body; whole stream for SSE).',
    labelNames: ['route'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const ttft = new Histogram({
    name: 'glimpse_time_to_first_token_seconds',
    help: 'From the request reaching the pipeline (queue wait and image preparation included) to the first token or reasoning token.',
    labelNames: ['model'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const genDuration = new Histogram({
    name: 'glimpse_generation_duration_seconds',
    help: 'From the request reaching the pipeline to the last event of its generation.',
    labelNames: ['model'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'glimpse_generated_tokens_total',
    help: 'Completion tokens generated (as the engine counted them).',
    labelNames: ['model'],
    registers: [registry],
  });
  const promptTokens = new Counter({
    name: 'glimpse_prompt_tokens_total',
    help: 'Prompt tokens processed.',
    labelNames: ['model'],
    registers: [registry],
  });
  const generations = new Counter({
    name: 'glimpse_generations_total',
    help: 'Generations by how they ended: stop, length, cancelled, or an error code.',
    labelNames: ['model', 'outcome'],
    registers: [registry],
  });
  const cache = new Counter({
    name: 'glimpse_cache_lookups_total',
    help: 'Answer cache lookups by result.',
    labelNames: ['result'],
    registers: [registry],
  });

  // Values whose truth lives elsewhere (scheduler, image pipeline), read at scrape time.
  const collectedGauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  const gauge = (name: string, help: string, read: (s: ReturnType<MeteredPipeline['stats']>) => number) =>
    collectedGauge(name, help, () => read(getStats()));
  gauge('glimpse_generations_in_flight', 'Generations running now.', (s) => s.inFlight);
  gauge('glimpse_queue_depth', 'Requests waiting for a slot.', (s) => s.queued);
  gauge(
    'glimpse_queue_background_depth',
    'Async jobs waiting for a slot (they come after interactive requests).',
    (s) => s.queuedBackground,
  );
  gauge(
    'glimpse_max_in_flight',
    'Generations that may run at once now: what the engines can run, under --max-in-flight.',
    (s) => s.maxInFlight,
  );
  gauge('glimpse_max_queue', 'Configured queue bound (--max-queue).', (s) => s.maxQueue);
  const collectedCounter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  // The same, one sample per label value.
  const collectedCounterBy = (name: string, help: string, label: string, read: () => Record<string, number>) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [value, n] of Object.entries(read())) this.inc({ [label]: value }, n);
      },
    });
  const counterFromStats = (name: string, help: string, read: (s: ReturnType<MeteredPipeline['stats']>) => number) =>
    collectedCounter(name, help, () => read(getStats()));
  counterFromStats('glimpse_admitted_total', 'Requests admitted to the engine.', (s) => s.admitted);
  counterFromStats('glimpse_rejected_queue_full_total', 'Requests refused with queue_full.', (s) => s.rejectedFull);
  counterFromStats('glimpse_queue_timeouts_total', 'Requests that waited past --queue-timeout.', (s) => s.timedOut);
  counterFromStats('glimpse_queue_abandoned_total', 'Requests whose client left while queued.', (s) => s.abandoned);
  counterFromStats(
    'glimpse_degraded_answers_total',
    'Answers replaced by the configured degraded answer.',
    (s) => s.degraded,
  );
  // Image preparation, process-wide (the decode gate and libvips are shared by every app in the process).
  collectedCounter(
    'glimpse_images_resolved_total',
    'Images read, checked and normalized for a request.',
    () => imageStats().resolved,
  );
  collectedCounter(
    'glimpse_image_normalize_seconds_total',
    'Time spent decoding, orienting, resizing and fingerprinting resolved images (divide by glimpse_images_resolved_total for the mean).',
    () => imageStats().normalizeMs / 1000,
  );
  collectedCounterBy(
    'glimpse_images_refused_total',
    'Images refused, by error code (invalid_image, image_too_large, image_url_forbidden, image_decode_timeout, ...).',
    'code',
    () => imageStats().refused,
  );
  collectedGauge('glimpse_image_decodes_running', 'Image normalizations running now.', () => imageStats().decoding);
  collectedGauge(
    'glimpse_image_decodes_waiting',
    'Image normalizations waiting for a decode slot (images.maxConcurrentDecodes).',
    () => imageStats().waiting,
  );
  new Gauge({
    name: 'glimpse_engine_ready',
    help: '1 when the engine is loaded and warmed up.',
    labelNames: ['engine', 'model'],
    registers: [registry],
    // Across --workers: ready only when every worker is.
    aggregator: 'min',
    collect() {
      const info = engine.info();
      this.reset();
      this.set({ engine: info.engine, model: info.model }, engine.health().ready ? 1 : 0);
    },
  });

  if (hasPools(engine)) meterPools(registry, engine);

  /**
   * `started`: when the request reached the pipeline (queue wait and image preparation count, as a
   * client sees them). A stream that ends before it is admitted (refused or left while queued) is
   * not a generation and is not counted.
   */
  function measure<E extends { type: string }>(
    model: string,
    events: AsyncIterable<E>,
    started: number,
  ): AsyncIterable<E> {
    let first = true;
    let admitted = false;
    let outcome = 'cancelled';
    const each = (raw: E) => {
      const ev = raw as unknown as GenerateEvent | { type: 'queued' | 'admitted' };
      if (ev.type === 'admitted') admitted = true;
      else if (first && (ev.type === 'token' || ev.type === 'reasoning')) {
        first = false;
        ttft.observe({ model }, (performance.now() - started) / 1000);
      }
      if (ev.type === 'usage') {
        tokens.inc({ model }, ev.usage.completionTokens);
        promptTokens.inc({ model }, ev.usage.promptTokens);
      } else if (ev.type === 'done') outcome = ev.finishReason;
      else if (ev.type === 'error') outcome = ev.error.code;
    };
    const end = () => {
      if (!admitted) return;
      generations.inc({ model, outcome });
      genDuration.observe({ model }, (performance.now() - started) / 1000);
    };
    return tap(events, each, end);
  }

  return {
    registry,
    meter(pipeline) {
      const open = pipeline.open.bind(pipeline);
      const wrapped = Object.create(pipeline) as typeof pipeline;
      wrapped.open = async (req, signal, opts) => {
        const arrived = performance.now();
        const stream = await open(req, signal, opts);
        if (stream.cache) cache.inc({ result: stream.cache });
        return withIterator(stream, () => measure(req.model, stream, arrived)[Symbol.asyncIterator]());
      };
      return wrapped;
    },
    meterJobs(jobs) {
      collectedGauge('glimpse_jobs_running', 'Async jobs this instance runs now.', () => jobs.stats().running);
      collectedCounterBy(
        'glimpse_jobs_ended_total',
        'Async jobs this instance ended, by outcome (succeeded, failed, cancelled, handed_back on shutdown).',
        'outcome',
        () => jobs.stats().ended,
      );
      collectedCounterBy(
        'glimpse_jobs_webhooks_total',
        'Job webhook events this instance settled: delivered (2xx), or failed (refused address, non-retryable answer, attempts used up).',
        'outcome',
        () => jobs.stats().webhooks,
      );
      new Gauge({
        name: 'glimpse_jobs_backlog',
        help: 'Async jobs waiting or running across all instances (the Redis stream), -1 when Redis cannot be reached.',
        registers: [registry],
        // Every worker reads the same stream: one reading, not their sum.
        aggregator: 'max',
        async collect() {
          this.set(await jobs.backlog().catch(() => -1));
        },
      });
    },
    meterKeys(keys) {
      collectedGauge('glimpse_api_keys', 'API keys in force.', () => keys.size);
      collectedCounterBy(
        'glimpse_api_keys_reloads_total',
        'Re-reads of the API keys file that changed the keys (reloaded) or were refused (error: unreadable, invalid or empty; the keys in force stay).',
        'outcome',
        () => keys.reloads,
      );
    },
    register(app) {
      app.addHook('onResponse', async (request, reply) => {
        const route = request.routeOptions.url ?? 'unmatched';
        httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
        httpDuration.observe({ route }, reply.elapsedTime / 1000);
      });
      app.get(
        '/metrics',
        {
          schema: { tags: ['Ops'], summary: 'Prometheus metrics (text exposition format)' },
          config: { errorFormat: 'plain' },
        },
        async (_req, reply) => {
          reply.type(registry.contentType);
          try {
            return await metricsText(registry);
          } catch (err) {
            // A failed scrape (up = 0) rather than one worker's numbers passed off as the cluster's.
            reply.code(503);
            return `# metrics of the other workers could not be gathered: ${(err as Error).message}\n`;
          }
        },
      );
    },
  };
}
