/**
 * GLM-4.6V-Flash-WEB answers: each shape's body, the /api/v1/infer SSE encoder, and /infer's error
 * body. Every answer whose text has grounding boxes also carries them as `glimpse_boxes` (see
 * protocols/boxes.ts), placed where each shape has room for one more field.
 */
import type { GenerateRequest, GlimpseError } from '../../core/index.js';
import type { CollectedAnswer, SseEncoder } from '../../streaming/index.js';
import { BoxScanner, boxesField, findBoxes } from '../boxes.js';
import { completionId, errorBody as openAIErrorBody, openAIUsage } from '../openai-chat/encode.js';

type Messages = GenerateRequest['messages'];

/** /v1/multimodal/completions: a multimodal.completion, OpenAI-like (boxes on the message, as Chat Completions has them). */
export function multimodalCompletion(model: string, a: CollectedAnswer, messages?: Messages) {
  return {
    id: completionId('cmpl-'),
    object: 'multimodal.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: a.text, ...boxesField(findBoxes(a.text), messages) },
        finish_reason: a.finishReason,
      },
    ],
    usage: openAIUsage(a.usage),
  };
}

/** /v1/chat: just the text (and the boxes). */
export const glmChatBody = (a: CollectedAnswer, messages?: Messages) => ({
  response: a.text,
  ...boxesField(findBoxes(a.text), messages),
});

/** /infer: the text, code 0, and the seconds it took (and the boxes). */
export const inferBody = (a: CollectedAnswer, costTime: number, messages?: Messages) => ({
  result: a.text,
  code: 0,
  cost_time: costTime,
  ...boxesField(findBoxes(a.text), messages),
});

/** /infer's errors keep its shape: no result, the HTTP status as `code`, the stable code as `error_code`. */
export function inferErrorBody(e: GlimpseError, costTime = 0) {
  return { result: null, code: e.status, error_code: e.code, msg: e.message, cost_time: costTime };
}

/**
 * /api/v1/infer: pieces of text as they come, then [END]; an error is one OpenAI error body before
 * [END]. Boxes come last before [END] as a named event (`event: glimpse_boxes`, a JSON
 * `{"glimpse_boxes": [...]}`), so a reader that only joins unnamed data lines can skip it by name.
 */
export function apiInferSseEncoder(messages?: Messages): SseEncoder {
  const scanner = new BoxScanner();
  return {
    terminator: '[END]',
    event: async (sse, ev) => {
      if (ev.type === 'token') {
        scanner.push(ev.text);
        await sse.data(ev.text);
      } else if (ev.type === 'done' && ev.finishReason !== 'cancelled') {
        const field = boxesField(scanner.boxes, messages);
        if (field.glimpse_boxes) await sse.json(field, 'glimpse_boxes');
      }
    },
    error: (sse, err) => sse.json(openAIErrorBody(err)),
  };
}
