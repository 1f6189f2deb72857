/**
 * WS /ws/infer: several requests on one connection, each with its own id, tokens as JSON
 * messages. Protocol in docs/websocket.md. The same pipeline as every HTTP route (admission,
 * deadlines, one terminal event), plus what a long-lived socket needs: pings that drop dead
 * peers, cancel by id, and backpressure (a slow reader pauses its own generations instead of
 * growing the send buffer).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { Config } from '../../config/index.js';
import { GlimpseError, toGlimpseError } from '../../core/index.js';
import { traceContext } from '../../observability/index.js';
import { checkJsonDepth } from '../json-depth.js';
import type { GenerationPipeline } from '../pipeline.js';
import type { RequestDefaults } from '../../protocols/defaults.js';
import type { WsRequestMessage, WsServerMessage } from '../../protocols/websocket/messages.js';
import { wsRequest } from '../../protocols/websocket/request.js';
import { errorBody, wsEncoder } from '../../protocols/websocket/encode.js';

const ID_RE = /^[\w.:-]{1,128}$/;

export interface WsRegistry {
  /** Open sockets, so shutdown can close them after their requests ended. */
  sockets: Set<WebSocket>;
}

export function registerWsRoutes(
  app: FastifyInstance,
  deps: { config: Config; defaults: RequestDefaults; pipeline: GenerationPipeline; registry: WsRegistry },
): void {
  const { config, defaults, pipeline, registry } = deps;
  const pingMs = config.wsPingInterval * 1000;

  app.get(
    '/ws/infer',
    { websocket: true, schema: { hide: true }, config: { errorFormat: 'plain' } },
    (socket, request) => {
      const log = request.log;
      const active = new Map<string, AbortController>();
      let closed = false;
      registry.sockets.add(socket);

      // Liveness: a peer that has not answered the previous ping by the next one is gone.
      let alive = true;
      socket.on('pong', () => (alive = true));
      const pinger = setInterval(() => {
        if (!alive) {
          log.info({ requests: active.size }, 'websocket peer missed a ping: dropping it');
          socket.terminate();
          return;
        }
        alive = false;
        socket.ping();
      }, pingMs);
      pinger.unref?.();

      const send = (msg: WsServerMessage): void => {
        if (closed || socket.readyState !== socket.OPEN) return;
        socket.send(JSON.stringify(msg));
      };
      const sendError = (id: string | null, err: GlimpseError) => send(errorBody(id, err));

      /** Wait while the client is behind: what we would send now would only pile up in memory. */
      const writable = async (): Promise<void> => {
        while (!closed && socket.bufferedAmount > config.wsMaxBufferedBytes) {
          await new Promise((r) => setTimeout(r, 10));
        }
      };

      async function run(id: string, msg: WsRequestMessage, ac: AbortController): Promise<void> {
        try {
          const req = wsRequest(msg, { id: randomUUID(), keyId: request.keyId }, defaults);
          req.trace = traceContext(request.headers);
          const events = await pipeline.open(req, ac.signal);
          const encode = wsEncoder(id, req.model, events.cache, req.messages);
          for await (const ev of events) {
            if (closed) break;
            await writable();
            const out = encode(ev);
            if (out) send(out);
          }
        } catch (err) {
          const e = toGlimpseError(err);
          if (ac.signal.aborted && e.code === 'client_closed') send({ type: 'done', id, finish_reason: 'cancelled' });
          else {
            if (e.status >= 500) log.warn({ code: e.code, msg: e.message, wsId: id }, 'websocket request failed');
            sendError(id, e);
          }
        } finally {
          active.delete(id);
        }
      }

      socket.on('message', (raw, isBinary) => {
        alive = true;
        let msg: { type?: unknown; id?: unknown };
        try {
          if (isBinary) throw new Error('binary');
          const text = raw.toString();
          checkJsonDepth(text, config.maxJsonDepth, 'the message');
          msg = JSON.parse(text) as typeof msg;
          if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('not an object');
        } catch (err) {
          sendError(
            null,
            err instanceof GlimpseError
              ? err
              : new GlimpseError('invalid_json', 'Each message must be one JSON object, sent as text.'),
          );
          return;
        }
        switch (msg.type) {
          case 'ping':
            send({ type: 'pong' });
            return;
          case 'cancel': {
            const ac = typeof msg.id === 'string' ? active.get(msg.id) : undefined;
            if (!ac) {
              sendError(
                typeof msg.id === 'string' ? msg.id : null,
                new GlimpseError(
                  'not_found',
                  `No running request with id ${JSON.stringify(msg.id)} on this connection.`,
                  { param: 'id' },
                ),
              );
              return;
            }
            ac.abort();
            return;
          }
          case 'request': {
            if (msg.id !== undefined && (typeof msg.id !== 'string' || !ID_RE.test(msg.id))) {
              sendError(
                null,
                new GlimpseError('invalid_request', "'id' must be 1 to 128 letters, digits, '_', '.', ':' or '-'.", {
                  param: 'id',
                }),
              );
              return;
            }
            const id = (msg.id as string | undefined) ?? randomUUID();
            if (active.has(id)) {
              sendError(
                id,
                new GlimpseError(
                  'invalid_request',
                  `A request with id '${id}' is already running on this connection.`,
                  { param: 'id' },
                ),
              );
              return;
            }
            if (active.size >= config.wsMaxRequestsPerConnection) {
              sendError(
                id,
                new GlimpseError(
                  'rate_limited',
                  `At most ${config.wsMaxRequestsPerConnection} requests may run at once on one connection.`,
                  { retryAfterSeconds: 1 },
                ),
              );
              return;
            }
            const ac = new AbortController();
            active.set(id, ac);
            void run(id, msg as WsRequestMessage, ac);
            return;
          }
          default:
            sendError(
              typeof msg.id === 'string' ? msg.id : null,
              new GlimpseError('invalid_request', "'type' must be 'request', 'cancel' or 'ping'.", { param: 'type' }),
            );
        }
      });

      socket.on('close', () => {
        closed = true;
        clearInterval(pinger);
        registry.sockets.delete(socket);
        // The client is gone: every generation it started stops and frees its slot now.
        for (const ac of active.values()) ac.abort();
        active.clear();
      });
      socket.on('error', (err) => log.debug({ err }, 'websocket error'));
    },
  );
}
