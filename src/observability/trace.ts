/**
 * W3C Trace Context: a caller's `traceparent` (and `tracestate`) is passed on to upstream servers,
 * so a trace that starts in the client continues into vLLM (which records spans with
 * --otlp-traces-endpoint), and every log line of the request carries its trace id. glimpse
 * does not start traces of its own; a malformed header is ignored, as the spec asks.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

// version-traceid-parentid-flags; version ff is invalid, all-zero ids are invalid.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace id of a valid traceparent, or undefined. */
export function traceIdOf(traceparent: unknown): string | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return undefined;
  return m[2];
}

/** The trace context to pass on, from a request's headers (undefined when there is none, or it is malformed). */
export function traceContext(headers: IncomingHttpHeaders): TraceContext | undefined {
  const traceparent = headers.traceparent;
  if (!traceIdOf(traceparent)) return undefined;
  const state = headers.tracestate;
  const tracestate = typeof state === 'string' && state.length <= 512 ? state.trim() : undefined;
  return { traceparent: (traceparent as string).trim(), ...(tracestate ? { tracestate } : {}) };
}
