/**
 * Zhipu's chat answers: OpenAI's chat.completion with Zhipu's `request_id`, its stream (each tool
 * call whole in one chunk, as Zhipu sends them and its clients read them; usage on the finishing
 * chunk), and Zhipu's error body with its business codes. Both carry `glimpse_boxes` where Chat
 * Completions does (the message; the finishing chunk's delta), in pixels of the request's image.
 */
import type { GenerateRequest, GlimpseError, Usage } from '../../core/index.js';
import type { CollectedAnswer, SseEncoder } from '../../streaming/index.js';
import { BoxScanner, boxesField } from '../boxes.js';
import { chatChunk, chatCompletion, openAIUsage } from '../openai-chat/encode.js';

export interface ZhipuMeta {
  id: string;
  requestId: string;
  created: number;
  model: string;
}

/** `messages` are the request's once its images are resolved: the boxes are measured on them. */
export function zhipuCompletion(meta: ZhipuMeta, a: CollectedAnswer, messages: GenerateRequest['messages']) {
  // glimpse_media stays a Chat Completions field (docs/images.md): Zhipu's answer carries only the boxes.
  const { object: _object, glimpse_media: _media, ...body } = chatCompletion(meta, a, messages);
  return { ...body, request_id: meta.requestId };
}

/** Zhipu's business codes for glimpse's codes, where one means the same; 1214 (a parameter is wrong) for other refusals, 500 for our failures. */
const BUSINESS_CODES: Partial<Record<GlimpseError['code'], string>> = {
  unauthorized: '1000',
  invalid_token: '1002',
  token_expired: '1003',
  model_not_found: '1211',
  context_length_exceeded: '1261',
  // Zhipu's own answer when its content filter stops an input or an output
  content_flagged: '1301',
  rate_limited: '1302',
  quota_exceeded: '1304',
  queue_full: '1305',
};

export function zhipuErrorBody(e: GlimpseError) {
  const code = BUSINESS_CODES[e.code] ?? (e.status < 500 ? '1214' : '500');
  return { error: { code, message: e.message, glimpse_code: e.code } };
}

/** Zhipu answers refusals of a request's content with 400, keys with 401, limits with 429, its own failures with 500. */
export function zhipuStatus(e: GlimpseError): number {
  if (e.status === 401 || e.status === 429) return e.status;
  if (e.code === 'model_not_found') return 400;
  return e.status < 500 ? 400 : e.status === 503 ? 503 : 500;
}

export function zhipuSseEncoder(meta: ZhipuMeta, messages: GenerateRequest['messages']): SseEncoder {
  let usage: Usage | undefined;
  const scanner = new BoxScanner();
  const calls: Array<{ index: number; id: string; type: 'function'; function: { name: string; arguments: string } }> =
    [];
  const chunk = (delta: Parameters<typeof chatChunk>[1], finish: Parameters<typeof chatChunk>[2] = null) => ({
    ...chatChunk(meta, delta, finish),
    request_id: meta.requestId,
  });
  return {
    terminator: '[DONE]',
    event: async (sse, ev) => {
      if (ev.type === 'token' && ev.text) {
        scanner.push(ev.text);
        await sse.json(chunk({ role: 'assistant', content: ev.text }));
      } else if (ev.type === 'reasoning') await sse.json(chunk({ role: 'assistant', reasoning_content: ev.text }));
      else if (ev.type === 'tool_call') {
        const call = (calls[ev.index] ??= {
          index: ev.index,
          id: ev.id ?? `call_${meta.id}_${ev.index}`,
          type: 'function',
          function: { name: '', arguments: '' },
        });
        if (ev.name) call.function.name += ev.name;
        if (ev.arguments) call.function.arguments += ev.arguments;
      } else if (ev.type === 'usage') usage = ev.usage;
      else if (ev.type === 'done' && ev.finishReason !== 'cancelled') {
        const whole = calls.filter(Boolean);
        if (whole.length) await sse.json(chunk({ role: 'assistant', tool_calls: whole }));
        await sse.json({
          ...chunk({ role: 'assistant', content: '', ...boxesField(scanner.boxes, messages) }, ev.finishReason),
          ...(usage ? { usage: openAIUsage(usage) } : {}),
        });
      }
    },
    error: (sse, err) => sse.json(zhipuErrorBody(err)),
  };
}
