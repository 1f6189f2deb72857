import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import type { Engine } from '../core/index.js';
import { createEngine } from '../engines/index.js';
import { createLogger, type Logger } from '../observability/index.js';
import { buildApp } from './app.js';
import type { Lifecycle } from './routes/health.js';

export { buildApp } from './app.js';
export type { GenerationPipeline } from './pipeline.js';

export interface Server {
  app: FastifyInstance;
  engine: Engine;
  lifecycle: Lifecycle;
  /** Resolves when the engine finished starting (loaded and warmed, or failed: see engine.health()). */
  engineStarted: Promise<void>;
  close(): Promise<void>;
}

/**
 * Build the whole server: engine + app. The engine starts in the background so /health can
 * answer "loading" while weights download; call app.listen() to serve.
 */
export async function createServer(config: Config, opts: { logger?: Logger; engine?: Engine } = {}): Promise<Server> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const engine = opts.engine ?? createEngine(config, logger);
  const { app, lifecycle } = await buildApp(config, engine, logger);
  const engineStarted = engine.start().catch((err: unknown) => {
    logger.error({ err }, 'engine failed to start');
  });
  return {
    app,
    engine,
    lifecycle,
    engineStarted,
    async close() {
      lifecycle.draining = true;
      await app.close();
      await engine.close();
    },
  };
}
