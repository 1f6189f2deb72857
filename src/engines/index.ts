import type { Config } from '../config/index.js';
import type { Engine } from '../core/index.js';
import type { Logger } from '../observability/index.js';
import { createEmbeddedEngine } from './embedded/index.js';
import { createSimulatedEngine } from './simulated.js';
import { createUpstreamEngine } from './upstream/index.js';
import { createRouterEngine } from './router.js';

export { createSimulatedEngine, SIMULATED_MODEL, firstStop } from './simulated.js';
export { createUpstreamEngine, parseSseData, toOpenAIRequestBody } from './upstream/index.js';
export { createEmbeddedEngine } from './embedded/index.js';

export function createEngine(config: Config, logger: Logger): Engine {
  if (Object.keys(config.upstreamRoutes).length && config.engine !== 'upstream')
    return createRouterEngine(config, logger); // refuses, saying why
  switch (config.engine) {
    case 'simulated':
      return createSimulatedEngine(config);
    case 'upstream':
      return Object.keys(config.upstreamRoutes).length
        ? createRouterEngine(config, logger)
        : createUpstreamEngine(config, logger);
    case 'embedded':
      return createEmbeddedEngine(config, logger);
  }
}
