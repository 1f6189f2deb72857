import type { FastifyInstance } from 'fastify';
import type { Engine } from '../../core/index.js';
import type { GenerationPipeline } from '../pipeline.js';

export interface Lifecycle {
  /** True once shutdown began: /ready fails first so load balancers drain us. */
  draining: boolean;
}

export function registerHealthRoutes(
  app: FastifyInstance,
  deps: {
    engine: Engine;
    lifecycle: Lifecycle;
    pipeline?: GenerationPipeline;
    /** With --redis-url: whether Redis is reached now (its absence does not make /health fail). */
    redis?: () => { status: 'up' | 'down'; note?: string };
  },
): void {
  const { engine, lifecycle, pipeline, redis } = deps;

  app.get(
    '/health',
    {
      schema: { tags: ['Ops'], summary: 'Engine and model state (200 unless unhealthy)' },
      config: { errorFormat: 'plain' },
    },
    async (_req, reply) => {
      const h = engine.health();
      const info = engine.info();
      reply.code(h.status === 'unhealthy' ? 503 : 200);
      return {
        status: h.status,
        model: info.model,
        device: info.device,
        model_loaded: h.modelLoaded,
        engine: info.engine,
        ...(info.simulated
          ? { simulated: true, note: 'Simulated engine: answers are synthetic, for load tests only.' }
          : {}),
        ...(h.reason ? { reason: h.reason } : {}),
        ...(pipeline ? { load: loadOf(pipeline) } : {}),
        ...(hasPools(engine) ? { upstreams: engine.poolStats() } : {}),
        ...(redis ? { redis: redis() } : {}),
      };
    },
  );

  // Liveness (Kubernetes livenessProbe): the process answers. Deliberately not the engine's state:
  // GPU servers being down or a model still loading is no reason to restart glimpse.
  app.get(
    '/livez',
    {
      schema: {
        tags: ['Ops'],
        summary: 'Liveness: 200 while the process answers (engine state is /health, traffic is /ready)',
      },
      config: { errorFormat: 'plain' },
    },
    async () => ({ alive: true }),
  );

  app.get(
    '/ready',
    {
      schema: { tags: ['Ops'], summary: 'For load balancers: 200 once the model is loaded and warmed up' },
      config: { errorFormat: 'plain' },
    },
    async (_req, reply) => {
      const h = engine.health();
      if (lifecycle.draining) return reply.code(503).send({ ready: false, reason: 'Shutting down.' });
      if (!h.ready)
        return reply.code(503).send({ ready: false, status: h.status, reason: h.reason ?? 'Model not ready yet.' });
      return { ready: true };
    },
  );
}

function loadOf(pipeline: GenerationPipeline) {
  const s = pipeline.stats();
  return {
    in_flight: s.inFlight,
    queued: s.queued,
    max_in_flight: s.maxInFlight,
    max_batch_size: s.maxInFlight,
    max_queue: s.maxQueue,
    draining: s.draining,
  };
}

function hasPools(engine: Engine): engine is Engine & { poolStats(): unknown } {
  return typeof (engine as { poolStats?: unknown }).poolStats === 'function';
}
