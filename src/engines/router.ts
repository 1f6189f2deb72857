/**
 * More than one model behind one glimpse: the primary upstream engine (--upstream, serving
 * --model-name) and one upstream engine per routed model (--upstream-routes name=url|url,...),
 * each with its own pool, health checks and circuit breakers. A request goes to the engine that
 * serves the model it names; /v1/models lists them all. The vLLM servers of a route serve the
 * model under the route's name (vllm serve ... --served-model-name <name>).
 */
import type { Config } from '../config/index.js';
import { GlimpseError, type EngineHealth, type GenerateEvent, type GenerateRequest } from '../core/index.js';
import type { Logger } from '../observability/index.js';
import { createUpstreamEngine, type UpstreamEngine } from './upstream/index.js';

export function routedEngineConfigs(config: Config): Array<{ name: string; config: Config }> {
  return Object.entries(config.upstreamRoutes).map(([name, urls]) => {
    const upstream = urls
      .split('|')
      .map((u) => u.trim())
      .filter(Boolean);
    if (!upstream.length)
      throw new GlimpseError(
        'invalid_request',
        `upstreamRoutes: the route for '${name}' names no base URL (name=http://host:8000/v1|http://host2:8000/v1).`,
      );
    // Each route is its own pool of one model: no fallback chain of the primary's, no degraded stand-in of its own.
    return {
      name,
      config: {
        ...config,
        upstream,
        upstreamModel: name,
        modelName: name,
        fallbackModels: [],
        fallbackUpstream: [],
        upstreamRoutes: {},
      },
    };
  });
}

export function createRouterEngine(config: Config, logger: Logger): UpstreamEngine {
  if (config.engine !== 'upstream')
    throw new GlimpseError(
      'invalid_request',
      `upstreamRoutes serve models from upstream servers beside the primary upstream engine; --engine is '${config.engine}'.`,
    );
  const primary = createUpstreamEngine(config, logger);
  const routes = new Map<string, UpstreamEngine>();
  for (const r of routedEngineConfigs(config)) {
    if (r.name === primary.info().model || routes.has(r.name))
      throw new GlimpseError('invalid_request', `upstreamRoutes: the model '${r.name}' is served twice.`);
    routes.set(r.name, createUpstreamEngine(r.config, logger.child({ route: r.name })));
  }
  const all = [primary, ...routes.values()];
  const pick = (model: string): UpstreamEngine => routes.get(model) ?? primary;

  return {
    supportsTools: true,
    supportsLogprobs: true,
    async start() {
      await Promise.all(all.map((e) => e.start()));
    },
    generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent> {
      return pick(req.model).generate(req, signal);
    },
    info() {
      const p = primary.info();
      return { ...p, models: all.flatMap((e) => e.info().models), device: `upstream (${all.length} pools)` };
    },
    // Ready while any model can be served (each request's own pool answers for itself); unhealthy only when none can.
    health(): EngineHealth {
      const hs = all.map((e) => ({ model: e.info().model, h: e.health() }));
      const down = hs.filter((x) => x.h.status !== 'healthy');
      const reason = down.length ? down.map((x) => `${x.model}: ${x.h.reason ?? x.h.status}`).join('; ') : undefined;
      if (hs.some((x) => x.h.ready))
        return { status: 'healthy', modelLoaded: true, ready: true, ...(reason ? { reason } : {}) };
      if (hs.some((x) => x.h.status === 'loading'))
        return { status: 'loading', modelLoaded: false, ready: false, reason };
      return { status: 'unhealthy', modelLoaded: false, ready: false, reason };
    },
    // Each model's own pool answers for it, so one model's full pool does not hold up another's requests.
    capacity: (model?: string) =>
      model === undefined ? all.reduce((n, e) => n + e.capacity(), 0) : pick(model).capacity(model),
    onCapacityChange(listener) {
      const offs = all.map((e) => e.onCapacityChange(listener));
      return () => offs.forEach((off) => off());
    },
    affinityKey: (req) => pick(req.model).affinityKey(req),
    home: (model, key) => (model === undefined ? primary : pick(model)).home(model, key),
    poolStats: () => all.flatMap((e) => e.poolStats().map((p) => ({ ...p, pool: `${e.info().model}: ${p.pool}` }))),
    async close() {
      await Promise.all(all.map((e) => e.close()));
    },
  };
}
