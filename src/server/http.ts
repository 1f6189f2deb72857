/** Request and reply plumbing every HTTP route shares. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestOrigin } from '../protocols/defaults.js';

/** An AbortSignal that fires when the client goes away before the response is finished. */
export function clientGoneSignal(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) ac.abort();
  };
  reply.raw.once('close', onClose);
  request.raw.once('aborted', () => ac.abort());
  return ac.signal;
}

/** Who asked, as every mapper takes it. */
export function origin(request: FastifyRequest): RequestOrigin {
  return { id: String(request.id), keyId: request.keyId };
}

/** Sets X-Glimpse-Cache (hit|miss|bypass) on the reply; SSE routes pick it up through pendingHeaders. */
export function cacheHeader(reply: FastifyReply): (status: 'hit' | 'miss' | 'bypass') => void {
  return (status) => {
    reply.header('x-glimpse-cache', status);
  };
}

/** Headers fastify would have sent, for responses we write ourselves (SSE). */
export function pendingHeaders(reply: FastifyReply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(reply.getHeaders()))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : String(v);
  return out;
}
