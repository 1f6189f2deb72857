/** GLM-4.6V-Flash-WEB answers: each shape's body, the /api/v1/infer SSE encoder, and /infer's error body. */
import type { GlimpseError } from '../../core/index.js';
import type { CollectedAnswer, SseEncoder } from '../../streaming/index.js';
import { completionId, errorBody as openAIErrorBody, openAIUsage } from '../openai-chat/encode.js';

/** /v1/multimodal/completions: a multimodal.completion, OpenAI-like. */
export function multimodalCompletion(model: string, a: CollectedAnswer) {
  return {
    id: completionId('cmpl-'),
    object: 'multimodal.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: a.text }, finish_reason: a.finishReason }],
    usage: openAIUsage(a.usage),
  };
}

/** /v1/chat: just the text. */
export const glmChatBody = (a: CollectedAnswer) => ({ response: a.text });

/** /infer: the text, code 0, and the seconds it took. */
export const inferBody = (a: CollectedAnswer, costTime: number) => ({ result: a.text, code: 0, cost_time: costTime });

/** /infer's errors keep its shape: no result, the HTTP status as `code`, the stable code as `error_code`. */
export function inferErrorBody(e: GlimpseError, costTime = 0) {
  return { result: null, code: e.status, error_code: e.code, msg: e.message, cost_time: costTime };
}

/** /api/v1/infer: pieces of text as they come, then [END]; an error is one OpenAI error body before [END]. */
export const apiInferSseEncoder: SseEncoder = {
  terminator: '[END]',
  event: async (sse, ev) => {
    if (ev.type === 'token') await sse.data(ev.text);
  },
  error: (sse, err) => sse.json(openAIErrorBody(err)),
};
