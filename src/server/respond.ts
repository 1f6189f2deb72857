/**
 * How a route turns the pipeline's event stream into a response, for the two kinds of answer:
 * one JSON body, or a Server-Sent Events stream. Every SSE route goes through streamSse(), so the
 * guarantees hold for all of them: headers flushed as soon as there is something to say, a
 * heartbeat comment while the stream is quiet, queue position as comments while waiting, an
 * error after the first byte sent as a final data event, and always a terminator.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import { toGlimpseError, type GenerateEvent, type GenerateRequest, type GlimpseError } from '../core/index.js';
import { SseWriter, type SseEncoder } from '../streaming/index.js';
import { traceContext } from '../observability/index.js';
import { cacheHeader, clientGoneSignal, pendingHeaders } from './http.js';
import type { GenerationPipeline, OpenedStream } from './pipeline.js';

export interface StreamOptions {
  /** Stops the generation as if the client had gone (the Responses API's cancel). */
  signal?: AbortSignal;
}

const stopSignal = (request: FastifyRequest, reply: FastifyReply, opts: StreamOptions): AbortSignal => {
  const gone = clientGoneSignal(request, reply);
  return opts.signal ? AbortSignal.any([gone, opts.signal]) : gone;
};

/** Takes the reply over as an event stream: status and headers now, then a heartbeat while it is quiet. */
function openEventStream(reply: FastifyReply, config: Config, heartbeatFrame?: string): SseWriter {
  reply.hijack();
  const sse = new SseWriter(reply.raw);
  sse.open(200, pendingHeaders(reply));
  sse.startHeartbeat(config.heartbeatInterval * 1000, heartbeatFrame);
  return sse;
}

/**
 * An event stream that replays what is already known (a stored answer), with no generation
 * behind it: the same headers and ending as streamSse.
 */
export async function replaySse(config: Config, reply: FastifyReply, write: (sse: SseWriter) => Promise<void>): Promise<void> {
  const sse = openEventStream(reply, config);
  try {
    await write(sse);
  } finally {
    sse.end();
  }
}

/**
 * Open a request whose answer is one body. The queue position (when it has to wait) and the
 * wait go out as X-Queue-Position and X-Queue-Wait-Ms.
 */
export async function openForBody(pipeline: GenerationPipeline, request: FastifyRequest, reply: FastifyReply, req: GenerateRequest, opts: StreamOptions = {}): Promise<OpenedStream> {
  let position = 0;
  req.trace ??= traceContext(request.headers);
  const events = await pipeline.open(req, stopSignal(request, reply, opts), {
    onCache: cacheHeader(reply),
    onQuota: (headers) => void reply.headers(headers),
    onQueued: (p) => {
      if (!position) reply.header('x-queue-position', String(p));
      position = p;
    },
  });
  if (events.queuedAt) reply.header('x-queue-wait-ms', String(Math.round(events.waitedMs)));
  return events;
}

/**
 * Answer a streaming request. Errors before anything was sent are thrown, so the route's error
 * handler answers with the right status (429 queue_full, 400 ...). Once the stream is open
 * (admitted, or queued and told so), every ending is an event the client can read.
 */
export async function streamSse(
  deps: { pipeline: GenerationPipeline; config: Config },
  request: FastifyRequest,
  reply: FastifyReply,
  req: GenerateRequest,
  encoder: SseEncoder,
  opts: StreamOptions = {},
): Promise<void> {
  const signal = stopSignal(request, reply, opts);
  let sse: SseWriter | undefined;
  const openStream = (): SseWriter => (sse ??= openEventStream(reply, deps.config, encoder.heartbeatFrame));

  let events: OpenedStream;
  req.trace ??= traceContext(request.headers);
  try {
    events = await deps.pipeline.open(req, signal, {
      onCache: cacheHeader(reply),
      onQuota: (headers) => void reply.headers(headers),
      onQueued: (position) => {
        if (!sse) reply.header('x-queue-position', String(position));
        void openStream().comment(`queued position=${position}`);
      },
    });
  } catch (err) {
    if (!sse) throw err;
    const s: SseWriter = sse;
    await encoder.error(s, toGlimpseError(err));
    if (encoder.terminator !== undefined) await s.data(encoder.terminator);
    s.end();
    return;
  }

  if (!sse) reply.header('x-queue-wait-ms', '0');
  const out = openStream();
  if (events.queuedAt) await out.comment(`admitted waited_ms=${Math.round(events.waitedMs)}`);
  try {
    if (encoder.start) await encoder.start(out);
    for await (const ev of events) {
      if (out.isClosed) break;
      if (ev.type === 'error') {
        request.log.warn({ code: ev.error.code, msg: ev.error.message }, 'stream ended with error');
        await encoder.error(out, ev.error);
      } else {
        await encoder.event(out, ev);
      }
    }
    if (encoder.terminator !== undefined) await out.data(encoder.terminator);
  } finally {
    out.end();
  }
}
