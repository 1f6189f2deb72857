/**
 * Anthropic Messages out: the message body, its event stream (message_start, content_block_start
 * / delta / stop with text_delta, thinking_delta and input_json_delta, message_delta with
 * stop_reason and usage, message_stop; `ping` as the heartbeat; `error` events), and Anthropic's
 * error body with its status codes.
 */
import { randomBytes } from 'node:crypto';
import type { FinishReason, GenerateRequest, GlimpseError, Usage } from '../../core/index.js';
import type { CollectedAnswer, SseEncoder, SseWriter } from '../../streaming/index.js';
import { BoxScanner, boxesField, findBoxes } from '../boxes.js';

export const messageId = () => 'msg_' + randomBytes(12).toString('hex');

type StopReason = 'end_turn' | 'max_tokens' | 'tool_use';
const stopReason = (r: FinishReason): StopReason =>
  r === 'length' ? 'max_tokens' : r === 'tool_calls' ? 'tool_use' : 'end_turn';
const usageOut = (u: Usage | undefined) => ({
  input_tokens: u?.promptTokens ?? 0,
  output_tokens: u?.completionTokens ?? 0,
});

/** A tool call's arguments as the object tool_use carries; text that is not a JSON object is kept under `_raw` rather than lost. */
function toolInput(args: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(args || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { _raw: args };
  } catch {
    return { _raw: args };
  }
}

/**
 * The whole answer as a Messages API message; `glimpse_boxes` (top level) when its text has
 * grounding boxes, on the request's image (`messages`, once resolved).
 */
export function anthropicMessage(
  meta: { id: string; model: string },
  a: CollectedAnswer,
  messages?: GenerateRequest['messages'],
) {
  return {
    id: meta.id,
    type: 'message' as const,
    role: 'assistant' as const,
    model: meta.model,
    content: [
      ...(a.reasoning ? [{ type: 'thinking' as const, thinking: a.reasoning, signature: '' }] : []),
      ...(a.text || !a.toolCalls ? [{ type: 'text' as const, text: a.text }] : []),
      ...(a.toolCalls ?? []).map((c) => ({
        type: 'tool_use' as const,
        id: c.id || 'toolu_' + randomBytes(12).toString('hex'),
        name: c.function.name,
        input: toolInput(c.function.arguments),
      })),
    ],
    stop_reason: stopReason(a.finishReason),
    stop_sequence: null,
    usage: usageOut(a.usage),
    ...boxesField(findBoxes(a.text), messages),
  };
}

/** Anthropic's error types by HTTP status, and the statuses it answers with (529 when the server is overloaded). */
function anthropicError(e: GlimpseError): { status: number; type: string } {
  if (e.code === 'queue_full' || e.code === 'queue_timeout' || e.code === 'model_loading')
    return { status: 529, type: 'overloaded_error' };
  if (e.status === 401) return { status: 401, type: 'authentication_error' };
  if (e.status === 403) return { status: 403, type: 'permission_error' };
  if (e.status === 404) return { status: 404, type: 'not_found_error' };
  if (e.status === 413) return { status: 413, type: 'request_too_large' };
  if (e.status === 429) return { status: 429, type: 'rate_limit_error' };
  if (e.status === 504) return { status: 504, type: 'timeout_error' };
  if (e.status < 500) return { status: 400, type: 'invalid_request_error' };
  return { status: e.status === 503 ? 529 : 500, type: e.status === 503 ? 'overloaded_error' : 'api_error' };
}

export const anthropicStatus = (e: GlimpseError): number => anthropicError(e).status;

/** {"type":"error","error":{"type","message"}}, plus glimpse's stable code (clients ignore what they do not know). */
export function anthropicErrorBody(e: GlimpseError) {
  return { type: 'error' as const, error: { type: anthropicError(e).type, message: e.message, code: e.code } };
}

type Block = { kind: 'thinking' | 'text' } | { kind: 'tool_use'; call: number };

/**
 * The event stream of one message: blocks open and close as the kind of output changes. The
 * closing message_delta's delta carries `glimpse_boxes` when the answer had grounding boxes.
 */
export function anthropicSseEncoder(
  meta: { id: string; model: string },
  messages?: GenerateRequest['messages'],
): SseEncoder {
  const scanner = new BoxScanner();
  let index = -1;
  let open: Block | undefined;
  let usage: Usage | undefined;
  const send = (sse: SseWriter, type: string, fields: Record<string, unknown>) => sse.json({ type, ...fields }, type);
  const close = async (sse: SseWriter) => {
    if (open) await send(sse, 'content_block_stop', { index });
    open = undefined;
  };
  const begin = async (sse: SseWriter, block: Block, contentBlock: Record<string, unknown>) => {
    await close(sse);
    open = block;
    await send(sse, 'content_block_start', { index: ++index, content_block: contentBlock });
  };
  return {
    heartbeatFrame: 'event: ping\ndata: {"type":"ping"}\n\n',
    start: async (sse) => {
      await send(sse, 'message_start', {
        message: {
          id: meta.id,
          type: 'message',
          role: 'assistant',
          model: meta.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: usageOut(undefined),
        },
      });
      await send(sse, 'ping', {});
    },
    event: async (sse, ev) => {
      if (ev.type === 'reasoning') {
        if (open?.kind !== 'thinking')
          await begin(sse, { kind: 'thinking' }, { type: 'thinking', thinking: '', signature: '' });
        await send(sse, 'content_block_delta', { index, delta: { type: 'thinking_delta', thinking: ev.text } });
      } else if (ev.type === 'token') {
        if (!ev.text) return;
        scanner.push(ev.text);
        if (open?.kind !== 'text') await begin(sse, { kind: 'text' }, { type: 'text', text: '' });
        await send(sse, 'content_block_delta', { index, delta: { type: 'text_delta', text: ev.text } });
      } else if (ev.type === 'tool_call') {
        if (open?.kind !== 'tool_use' || open.call !== ev.index) {
          await begin(
            sse,
            { kind: 'tool_use', call: ev.index },
            {
              type: 'tool_use',
              id: ev.id || 'toolu_' + randomBytes(12).toString('hex'),
              name: ev.name ?? '',
              input: {},
            },
          );
        }
        if (ev.arguments)
          await send(sse, 'content_block_delta', {
            index,
            delta: { type: 'input_json_delta', partial_json: ev.arguments },
          });
      } else if (ev.type === 'usage') usage = ev.usage;
      else if (ev.type === 'done' && ev.finishReason !== 'cancelled') {
        // An answer with nothing in it still has one (empty) text block, as Anthropic sends it.
        if (index < 0) await begin(sse, { kind: 'text' }, { type: 'text', text: '' });
        await close(sse);
        await send(sse, 'message_delta', {
          delta: {
            stop_reason: stopReason(ev.finishReason),
            stop_sequence: null,
            ...boxesField(scanner.boxes, messages),
          },
          usage: usageOut(usage),
        });
        await send(sse, 'message_stop', {});
      }
    },
    error: (sse, err) => send(sse, 'error', { error: anthropicErrorBody(err).error }),
  };
}
