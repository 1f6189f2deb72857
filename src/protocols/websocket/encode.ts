/** Pipeline events and errors as WebSocket messages. */
import type { GenerateEvent, GenerateRequest, GlimpseError, Usage } from '../../core/index.js';
import { BoxScanner, boxesField } from '../boxes.js';
import { openAIUsage } from '../openai-chat/encode.js';
import type { WsServerMessage } from './messages.js';

/** WebSocket's error body: the stable code, the message, the HTTP status it would have had, and retry_after when a retry has a time. */
export function errorBody(id: string | null, e: GlimpseError): Extract<WsServerMessage, { type: 'error' }> {
  return {
    type: 'error',
    id,
    error: {
      code: e.code,
      message: e.message,
      status: e.status,
      ...(e.retryAfterSeconds !== undefined ? { retry_after: e.retryAfterSeconds } : {}),
    },
  };
}

/** The queue's events as the pipeline hands them out (structural: protocols do not import server/). */
type QueueEvent = { type: 'queued'; position: number } | { type: 'admitted'; waitedMs: number; queuedAt: number };

/**
 * One request's events as messages: `queued` while it waits, `start` once admitted (with the
 * wait and, as HTTP routes send X-Glimpse-Cache, the cache status), text and reasoning as they
 * come, usage held for the done message (with `glimpse_boxes` when the answer had grounding boxes,
 * on the image of `messages`), an error as the error body. Undefined: nothing to send.
 */
export function wsEncoder(
  id: string,
  model: string,
  cache?: string,
  messages?: GenerateRequest['messages'],
): (ev: GenerateEvent | QueueEvent) => WsServerMessage | undefined {
  let usage: Usage | undefined;
  const scanner = new BoxScanner();
  return (ev) => {
    switch (ev.type) {
      case 'queued':
        return { type: 'queued', id, position: ev.position };
      case 'admitted':
        return { type: 'start', id, model, queue_wait_ms: Math.round(ev.waitedMs), ...(cache ? { cache } : {}) };
      case 'token':
        scanner.push(ev.text);
        return { type: ev.type, id, text: ev.text };
      case 'reasoning':
        return { type: ev.type, id, text: ev.text };
      case 'usage':
        usage = ev.usage;
        return undefined;
      case 'done':
        return {
          type: 'done',
          id,
          finish_reason: ev.finishReason,
          ...(usage ? { usage: openAIUsage(usage) } : {}),
          ...(ev.finishReason !== 'cancelled' ? boxesField(scanner.boxes, messages) : {}),
        };
      case 'error':
        return errorBody(id, ev.error);
      default:
        return undefined;
    }
  };
}
