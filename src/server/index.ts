import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import type { Engine } from '../core/index.js';
import { createEngine } from '../engines/index.js';
import { createLogger, type Logger } from '../observability/index.js';
import { buildApp, type App } from './app.js';
import type { GenerationPipeline } from './pipeline.js';
import type { Lifecycle } from './routes/health.js';

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

export { buildApp } from './app.js';
export type { GenerationPipeline, PipelineStats, OpenedStream, OpenOptions } from './pipeline.js';

export interface Server {
  app: FastifyInstance;
  engine: Engine;
  lifecycle: Lifecycle;
  pipeline: GenerationPipeline;
  /** Resolves when the engine finished starting (loaded and warmed, or failed: see engine.health()). */
  engineStarted: Promise<void>;
  /** Re-read the API keys file now (what SIGHUP does). */
  reloadApiKeys: App['reloadApiKeys'];
  close(): Promise<void>;
}

/**
 * Build the whole server: engine + app. The engine starts in the background so /health can
 * answer "loading" while weights download; call app.listen() to serve.
 */
export async function createServer(
  config: Config,
  opts: { logger?: Logger; engine?: Engine; stateOwner?: boolean } = {},
): Promise<Server> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const engine = opts.engine ?? createEngine(config, logger);
  const { app, lifecycle, pipeline, ws, jobs, reloadApiKeys } = await buildApp(config, engine, logger, {
    stateOwner: opts.stateOwner,
  });
  const engineStarted = engine.start().catch((err: unknown) => {
    logger.error({ err }, 'engine failed to start');
  });
  return {
    app,
    engine,
    lifecycle,
    pipeline,
    engineStarted,
    reloadApiKeys,
    /**
     * Graceful: /ready fails and new requests get 503 shutting_down at once; in-flight ones get
     * graceShutdownSeconds to finish, then are cancelled with a shutting_down error event; then
     * the listener and the engine close. Safe to call twice.
     */
    close: once(async () => {
      lifecycle.draining = true;
      // Job workers take no new job; the ones running get the same grace as requests.
      jobs.drain();
      await pipeline.shutdown(config.graceShutdownSeconds * 1000);
      // Every request has ended (and said so); WebSocket peers are told why the socket closes.
      for (const socket of ws.sockets) socket.close(1001, 'server shutting down');
      await app.close();
      await engine.close();
    }),
  };
}
