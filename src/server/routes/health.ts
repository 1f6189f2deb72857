import type { FastifyInstance } from 'fastify';
import type { Engine } from '../../core/index.js';

export interface Lifecycle {
  /** True once shutdown began: /ready fails first so load balancers drain us. */
  draining: boolean;
}

export function registerHealthRoutes(app: FastifyInstance, deps: { engine: Engine; lifecycle: Lifecycle }): void {
  const { engine, lifecycle } = deps;

  app.get('/health', { schema: { tags: ['Ops'], summary: 'Engine and model state (200 unless unhealthy)' }, config: { errorFormat: 'plain' } }, async (_req, reply) => {
    const h = engine.health();
    const info = engine.info();
    reply.code(h.status === 'unhealthy' ? 503 : 200);
    return {
      status: h.status,
      model: info.model,
      device: info.device,
      model_loaded: h.modelLoaded,
      engine: info.engine,
      ...(info.simulated ? { simulated: true, note: 'Simulated engine: answers are synthetic, for load tests only.' } : {}),
      ...(h.reason ? { reason: h.reason } : {}),
    };
  });

  app.get('/ready', { schema: { tags: ['Ops'], summary: 'For load balancers: 200 once the model is loaded and warmed up' }, config: { errorFormat: 'plain' } }, async (_req, reply) => {
    const h = engine.health();
    if (lifecycle.draining) return reply.code(503).send({ ready: false, reason: 'Shutting down.' });
    if (!h.ready) return reply.code(503).send({ ready: false, status: h.status, reason: h.reason ?? 'Model not ready yet.' });
    return { ready: true };
  });
}
