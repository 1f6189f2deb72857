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
import { GlimpseError, toGlimpseError, type FinishReason, type GenerateRequest, type Usage } from '../../core/index.js';
import { openAIUsage } from '../../streaming/index.js';
import { traceContext } from '../../observability/index.js';
import { checkJsonDepth, glmSampling, imageSourceFromString, singleTurn } from '../common.js';
import type { GenerationPipeline } from '../pipeline.js';
import type { RequestDefaults, RequestOrigin } from '../../protocols/defaults.js';

const ID_RE = /^[\w.:-]{1,128}$/;

/** Messages the server sends. */
export type WsServerMessage =
  | { type: 'queued'; id: string; position: number }
  | { type: 'start'; id: string; model: string; queue_wait_ms: number }
  | { type: 'reasoning'; id: string; text: string }
  | { type: 'token'; id: string; text: string }
  | { type: 'done'; id: string; finish_reason: FinishReason; usage?: ReturnType<typeof openAIUsage> }
  | { type: 'error'; id: string | null; error: { code: string; message: string; status: number; retry_after?: number } }
  | { type: 'pong' };

interface WsRequestMessage {
  type: 'request';
  id?: unknown;
  prompt?: unknown;
  image?: unknown;
  system?: unknown;
  model?: unknown;
  max_new_tokens?: unknown;
  max_tokens?: unknown;
  temperature?: unknown;
  top_p?: unknown;
  thinking?: unknown;
}

export interface WsRegistry {
  /** Open sockets, so shutdown can close them after their requests ended. */
  sockets: Set<WebSocket>;
}

export function registerWsRoutes(app: FastifyInstance, deps: { config: Config; defaults: RequestDefaults; pipeline: GenerationPipeline; registry: WsRegistry }): void {
  const { config, defaults, pipeline, registry } = deps;
  const pingMs = config.wsPingInterval * 1000;

  app.get('/ws/infer', { websocket: true, schema: { hide: true }, config: { errorFormat: 'plain' } }, (socket, request) => {
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
    const sendError = (id: string | null, err: GlimpseError) => {
      const retry = Number(err.headers['Retry-After']);
      send({ type: 'error', id, error: { code: err.code, message: err.message, status: err.status, ...(Number.isFinite(retry) && retry > 0 ? { retry_after: retry } : {}) } });
    };

    /** Wait while the client is behind: what we would send now would only pile up in memory. */
    const writable = async (): Promise<void> => {
      while (!closed && socket.bufferedAmount > config.wsMaxBufferedBytes) {
        await new Promise((r) => setTimeout(r, 10));
      }
    };

    async function run(id: string, msg: WsRequestMessage, ac: AbortController): Promise<void> {
      try {
        const req = toRequest(msg, { id: randomUUID(), keyId: request.keyId }, defaults);
        req.trace = traceContext(request.headers);
        let cache: string | undefined;
        const events = await pipeline.open(req, ac.signal, { onQueued: (p) => send({ type: 'queued', id, position: p }), onCache: (s) => (cache = s) });
        // `cache` (hit|miss|bypass) is what HTTP routes send as X-Glimpse-Cache.
        send({ type: 'start', id, model: req.model, queue_wait_ms: Math.round(events.waitedMs), ...(cache ? { cache } : {}) });
        let usage: Usage | undefined;
        for await (const ev of events) {
          if (closed) break;
          await writable();
          switch (ev.type) {
            case 'token':
            case 'reasoning':
              send({ type: ev.type, id, text: ev.text });
              break;
            case 'usage':
              usage = ev.usage;
              break;
            case 'done':
              send({ type: 'done', id, finish_reason: ev.finishReason, ...(usage ? { usage: openAIUsage(usage) } : {}) });
              break;
            case 'error':
              sendError(id, ev.error);
              break;
          }
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
        sendError(null, err instanceof GlimpseError ? err : new GlimpseError('invalid_json', 'Each message must be one JSON object, sent as text.'));
        return;
      }
      switch (msg.type) {
        case 'ping':
          send({ type: 'pong' });
          return;
        case 'cancel': {
          const ac = typeof msg.id === 'string' ? active.get(msg.id) : undefined;
          if (!ac) {
            sendError(typeof msg.id === 'string' ? msg.id : null, new GlimpseError('not_found', `No running request with id ${JSON.stringify(msg.id)} on this connection.`, { param: 'id' }));
            return;
          }
          ac.abort();
          return;
        }
        case 'request': {
          if (msg.id !== undefined && (typeof msg.id !== 'string' || !ID_RE.test(msg.id))) {
            sendError(null, new GlimpseError('invalid_request', "'id' must be 1 to 128 letters, digits, '_', '.', ':' or '-'.", { param: 'id' }));
            return;
          }
          const id = (msg.id as string | undefined) ?? randomUUID();
          if (active.has(id)) {
            sendError(id, new GlimpseError('invalid_request', `A request with id '${id}' is already running on this connection.`, { param: 'id' }));
            return;
          }
          if (active.size >= config.wsMaxRequestsPerConnection) {
            sendError(id, new GlimpseError('rate_limited', `At most ${config.wsMaxRequestsPerConnection} requests may run at once on one connection.`, { headers: { 'Retry-After': '1' } }));
            return;
          }
          const ac = new AbortController();
          active.set(id, ac);
          void run(id, msg as WsRequestMessage, ac);
          return;
        }
        default:
          sendError(typeof msg.id === 'string' ? msg.id : null, new GlimpseError('invalid_request', "'type' must be 'request', 'cancel' or 'ping'.", { param: 'type' }));
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
  });
}

function toRequest(msg: WsRequestMessage, origin: RequestOrigin, defaults: RequestDefaults): GenerateRequest {
  const prompt = msg.prompt;
  if (typeof prompt !== 'string' || !prompt.trim()) throw new GlimpseError('missing_prompt', "Send the question as 'prompt' (a non-empty string).", { param: 'prompt' });
  if (prompt.length > defaults.maxPromptChars) throw new GlimpseError('invalid_request', `'prompt' is longer than ${defaults.maxPromptChars} characters.`, { param: 'prompt' });
  if (msg.image !== undefined && typeof msg.image !== 'string') throw new GlimpseError('invalid_image_url', "'image' must be a data URL, an http(s) URL or base64.", { param: 'image' });
  if (msg.system !== undefined && typeof msg.system !== 'string') throw new GlimpseError('invalid_request', "'system' must be a string.", { param: 'system' });
  if (msg.model !== undefined && typeof msg.model !== 'string') throw new GlimpseError('invalid_request', "'model' must be a string.", { param: 'model' });
  const sampling = glmSampling(msg, defaults);
  const image = typeof msg.image === 'string' ? imageSourceFromString(msg.image, 'image') : undefined;
  return {
    id: origin.id,
    model: (msg.model as string | undefined) || defaults.model,
    messages: singleTurn(prompt, image, msg.system as string | undefined),
    sampling,
    stream: true,
    thinking: typeof msg.thinking === 'boolean' ? msg.thinking : undefined,
    keyId: origin.keyId,
  };
}
