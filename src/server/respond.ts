/**
 * How a route turns the pipeline's event stream into a response, for the two kinds of answer:
 * one JSON body, or a Server-Sent Events stream. The values an opened stream carries (cache
 * status, quota standing) and its queue events (queued, admitted) become HTTP headers and SSE
 * comments here, in one place. Every SSE route goes through streamSse(), so the guarantees hold
 * for all of them: headers flushed as soon as there is something to say, a heartbeat while the
 * stream is quiet, queue position as comments while waiting, an error after the first byte sent
 * as a final data event, and always a terminator.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import { toGlimpseError, type GenerateRequest } from '../core/index.js';
import { collectAnswer, SseWriter, type CollectedAnswer, type SseEncoder } from '../streaming/index.js';
import { traceContext } from '../observability/index.js';
import { clientGoneSignal, pendingHeaders } from './http.js';
import { CACHE_HEADER, generationOf, type GenerationPipeline, type OpenedStream } from './pipeline.js';

/** The headers an opened stream's values stand for: X-Glimpse-Cache (hit|miss|bypass) and the key's x-ratelimit-* standing. */
function openedHeaders(events: OpenedStream): Record<string, string> {
  return { ...events.quota, ...(events.cache ? { [CACHE_HEADER]: events.cache } : {}) };
}

async function open(
  pipeline: GenerationPipeline,
  request: FastifyRequest,
  signal: AbortSignal,
  req: GenerateRequest,
): Promise<OpenedStream> {
  req.trace ??= traceContext(request.headers);
  return pipeline.open(req, signal);
}

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
export async function replaySse(
  config: Config,
  reply: FastifyReply,
  write: (sse: SseWriter) => Promise<void>,
): Promise<void> {
  const sse = openEventStream(reply, config);
  try {
    await write(sse);
  } finally {
    sse.end();
  }
}

/**
 * The answer of a request whose answer is one body. The queue position (when it has to wait) and
 * the wait go out as X-Queue-Position and X-Queue-Wait-Ms; an error (thrown) keeps the headers set.
 */
export async function answerForBody(
  pipeline: GenerationPipeline,
  request: FastifyRequest,
  reply: FastifyReply,
  req: GenerateRequest,
  opts: StreamOptions = {},
): Promise<CollectedAnswer> {
  const events = await open(pipeline, request, stopSignal(request, reply, opts), req);
  reply.headers(openedHeaders(events));
  return collectAnswer(
    generationOf(events, (ev) => {
      if (ev.type === 'queued' && !reply.hasHeader('x-queue-position'))
        reply.header('x-queue-position', String(ev.position));
      else if (ev.type === 'admitted' && ev.queuedAt) reply.header('x-queue-wait-ms', String(Math.round(ev.waitedMs)));
    }),
  );
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
  const events = await open(deps.pipeline, request, stopSignal(request, reply, opts), req);
  reply.headers(openedHeaders(events));
  let sse: SseWriter | undefined;
  const openStream = (): SseWriter => (sse ??= openEventStream(reply, deps.config, encoder.heartbeatFrame));
  try {
    for await (const ev of events) {
      if (sse?.isClosed) break;
      switch (ev.type) {
        case 'queued':
          if (!sse) reply.header('x-queue-position', String(ev.position));
          await openStream().comment(`queued position=${ev.position}`);
          break;
        case 'admitted':
          if (!sse) reply.header('x-queue-wait-ms', '0');
          // Headers go out at admission, before the engine's first token.
          openStream();
          if (ev.queuedAt) await openStream().comment(`admitted waited_ms=${Math.round(ev.waitedMs)}`);
          if (encoder.start) await encoder.start(openStream());
          break;
        case 'error':
          request.log.warn({ code: ev.error.code, msg: ev.error.message }, 'stream ended with error');
          await encoder.error(openStream(), toGlimpseError(ev.error));
          break;
        default:
          await encoder.event(openStream(), ev);
      }
    }
    if (encoder.terminator !== undefined) await openStream().data(encoder.terminator);
  } finally {
    sse?.end();
  }
}
