import type { GenerateEvent, GlimpseError } from '../core/index.js';
import type { SseWriter } from './sse.js';

/**
 * How one SSE wire format writes a pipeline's events. Every streaming shape supplies one; the
 * server's streamSse() drives it, so heartbeats, queue comments, errors after the first byte
 * and the terminator behave alike for all of them.
 */
export interface SseEncoder {
  /** Written once the request is admitted, before the first event (e.g. the role chunk). */
  start?(sse: SseWriter): Promise<void>;
  /** One event that is not an error. */
  event(sse: SseWriter, ev: Exclude<GenerateEvent, { type: 'error' }>): Promise<void>;
  /** The error that ends the stream, as this wire format writes it. */
  error(sse: SseWriter, err: GlimpseError): Promise<void>;
  /** The raw frame of this format's heartbeat where it defines one (Anthropic's ping event); absent: a comment line. */
  heartbeatFrame?: string;
  /** The last data payload: '[DONE]' for OpenAI chat, '[END]' for GLM-WEB; none for the Responses API (its last event says it all). */
  terminator?: string;
}
