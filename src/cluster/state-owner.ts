/**
 * `glimpse serve --workers N` without Redis: the state directory (async jobs, files, batches, kept
 * by one process at a time: src/jobs/embedded.ts holds its lock) belongs to worker 1. It serves its
 * HTTP API on a Unix socket in the state directory as well as on the port, and every other worker
 * forwards the /v1/jobs, /v1/files and /v1/batches requests it receives there, bytes as they are,
 * so a client reaches the one store whichever worker its connection landed on.
 *
 * Why forward HTTP rather than put the store in the primary behind IPC calls: jobs run through a
 * worker's pipeline (validation, images, cache, quotas, the scheduler), which the primary does not
 * have; a store in the primary would need a job hand-out protocol over IPC on top of the store's
 * calls. Forwarding keeps one store and one runner in one process with no new protocol, at the cost
 * of an extra local hop for those routes, and jobs run in worker 1's scheduler only. A restarted
 * worker 1 takes the lock over (its holder is gone) and serves the socket again; meanwhile the
 * others answer 503 jobs_unavailable (retry), as a store that cannot be reached does.
 */
import { request as httpRequest, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { GlimpseError } from '../core/index.js';
import { errorBody } from '../protocols/openai-chat/encode.js';

/** The worker that owns the state directory when there is no Redis to share it. */
export const STATE_OWNER = 1;
const STATE_ROUTES = /^\/v1\/(jobs|files|batches)(\/|\?|$)/;

export function stateSocket(stateDir: string): string {
  return join(stateDir, 'owner.sock');
}

/** In the owner: the same HTTP server answers on the state directory's socket. */
export async function serveStateSocket(server: HttpServer, path: string): Promise<NetServer> {
  await mkdir(join(path, '..'), { recursive: true });
  await unlink(path).catch(() => {}); // left by an owner that died
  const sock = createNetServer((conn) => server.emit('connection', conn));
  // exclusive: this worker's own socket, not one the cluster primary would share out.
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.listen({ path, exclusive: true }, () => resolve());
  });
  return sock;
}

/** In the other workers: the state routes go to the owner over its socket. */
export function forwardStateRoutes(app: FastifyInstance, path: string, worker: string): void {
  app.addHook('onRequest', async (request, reply) => {
    if (!STATE_ROUTES.test(request.url)) return;
    reply.hijack();
    const res = reply.raw;
    const up = httpRequest(
      { socketPath: path, method: request.method, path: request.url, headers: request.raw.headers },
      (answer) => {
        res.writeHead(answer.statusCode!, {
          ...answer.headers,
          'x-glimpse-worker': worker,
          'x-glimpse-state-owner': String(STATE_OWNER),
        });
        answer.pipe(res);
      },
    );
    up.on('error', () => {
      if (res.headersSent) return void res.destroy();
      const e = new GlimpseError(
        'jobs_unavailable',
        `Jobs, files and batches are kept by worker ${STATE_OWNER}, which cannot be reached now (restarting?); try again shortly.`,
        { retryAfterSeconds: 5 },
      );
      res.writeHead(e.status, { 'content-type': 'application/json', 'retry-after': '5', 'x-glimpse-worker': worker });
      res.end(JSON.stringify(errorBody(e)));
    });
    request.raw.pipe(up);
  });
}
