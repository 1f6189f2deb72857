/**
 * Embedded engine door. FOUNDATION PLACEHOLDER: the embedded-engine issue replaces this with
 * transformers.js + onnxruntime-node in a worker thread. Until then it reports itself unhealthy
 * with a reason, so the server still starts and /health says why.
 */
import type { Config } from '../../config/index.js';
import { servedModelName } from '../../config/index.js';
import { GlimpseError, type Engine, type GenerateEvent } from '../../core/index.js';
import type { Logger } from '../../observability/index.js';

export function createEmbeddedEngine(config: Config, _logger: Logger): Engine {
  const reason = 'The embedded engine is not built into this version; start with --engine upstream --upstream URL or --engine simulated.';
  return {
    async start() {},
    async *generate(): AsyncIterable<GenerateEvent> {
      yield { type: 'error', error: new GlimpseError('engine_unavailable', reason) };
    },
    info: () => ({ engine: 'embedded', model: servedModelName(config), models: [{ id: servedModelName(config), ownedBy: 'glimpse' }], device: 'cpu', simulated: false }),
    health: () => ({ status: 'unhealthy', modelLoaded: false, ready: false, reason }),
    async close() {},
  };
}
