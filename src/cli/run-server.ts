/** One glimpse server process: listen, serve until a signal, drain, close. */
import type { Config } from '../config/index.js';
import type { Engine } from '../core/index.js';
import type { Logger } from '../observability/index.js';
import { createServer } from '../server/index.js';
import { resolveStateDir } from '../config/index.js';
import { forwardStateRoutes, serveStateSocket, STATE_OWNER, stateSocket } from '../cluster/state-owner.js';
import { onReload } from './reload-signal.js';

export interface RunOptions {
  /** The engine to use instead of the one the config names (a cluster worker's stand-in for the primary's model). */
  engine?: Engine;
  /** This process's number among the cluster's workers: every answer then says which one sent it (X-Glimpse-Worker). */
  worker?: number;
  /** Also drain and stop when this fires (a cluster worker whose primary is gone). */
  stopWhen?: (stop: (why: string) => void) => void;
}

/** Resolves with the process exit code once the server has stopped. */
export async function runServer(config: Config, logger: Logger, opts: RunOptions = {}): Promise<number> {
  // Several workers and no Redis: one of them keeps the state directory, the others forward to it.
  const shared = opts.worker !== undefined && !config.redisUrl;
  const socket = shared ? stateSocket(resolveStateDir(config.stateDir)) : undefined;
  const stateOwner = !shared || opts.worker === STATE_OWNER;
  const server = await createServer(config, { logger, engine: opts.engine, stateOwner });
  const worker = opts.worker === undefined ? undefined : String(opts.worker);
  // Which process answered: what an operator needs to tie a slow or failed answer to one worker's logs.
  if (worker) server.app.addHook('onRequest', async (_req, reply) => void reply.header('x-glimpse-worker', worker));
  if (socket && !stateOwner) forwardStateRoutes(server.app, socket, worker!);
  try {
    await server.app.listen({ host: config.host, port: config.port });
  } catch (err) {
    logger.fatal({ err }, `cannot listen on ${config.host}:${config.port}`);
    await server.engine.close();
    return 1;
  }
  const stateServer =
    socket && stateOwner
      ? await serveStateSocket(server.app.server, socket).catch((err: unknown) => {
          // The other workers then answer 503 jobs_unavailable for those routes; the rest serves on.
          logger.error({ err, socket }, 'cannot serve the state directory to the other workers');
          return undefined;
        })
      : undefined;
  const info = server.engine.info();
  logger.info(
    { engine: info.engine, model: info.model, device: info.device },
    `glimpse serving ${info.model} (${info.engine}) on http://${config.host}:${config.port} — docs at /docs`,
  );
  if (info.simulated) logger.warn('simulated engine: answers are synthetic, for load tests only');

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      try {
        stateServer?.close();
        await server.close();
        resolve(0);
      } catch (err) {
        logger.error({ err }, 'error while shutting down');
        resolve(1);
      }
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
    // systemctl reload / kill -HUP: re-read the API keys file (rotation without a restart).
    onReload(() => void server.reloadApiKeys());
    opts.stopWhen?.((why) => void stop(why));
  });
}
