/**
 * Embedded engine door: transformers.js + onnxruntime-node in worker threads, the default
 * engine. See docs/embedded.md.
 */
import type { Config } from '../../config/index.js';
import type { Engine } from '../../core/index.js';
import type { Logger } from '../../observability/index.js';
import { EmbeddedEngine, type EmbeddedEngineOptions } from './engine.js';

export function createEmbeddedEngine(
  config: Config,
  logger: Logger,
  options?: EmbeddedEngineOptions,
): EmbeddedEngine & Engine {
  return new EmbeddedEngine(config, logger, options);
}

export { EmbeddedEngine, type EmbeddedEngineOptions } from './engine.js';
export { cudaProviderInstalled } from './device.js';
export { solidPng } from '../../images/png.js';
export {
  resolveModel,
  defaultCacheDir,
  modelCacheDir,
  ModelUnavailableError,
  type ResolvedModel,
} from './model-source.js';
export { formatProgress, type DownloadProgress } from './download.js';
export { sessionOptions } from './protocol.js';
