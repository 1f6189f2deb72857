/** Chat Completions out: the chat.completion body, its SSE chunks, and the OpenAI error body. */
import type { FinishReason, GenerateRequest, GlimpseError, TokenLogprob, Usage } from '../../core/index.js';
import { randomHex } from '../../core/ids.js';
import type { CollectedAnswer, SseEncoder } from '../../streaming/index.js';
import { BoxScanner, boxesField, findBoxes, type BoxOut } from '../boxes.js';
import { mediaField } from '../media.js';

export const completionId = (prefix = 'chatcmpl-'): string => prefix + randomHex(12);

export const openAIUsage = (u: Usage) => ({
  prompt_tokens: u.promptTokens,
  completion_tokens: u.completionTokens,
  total_tokens: u.promptTokens + u.completionTokens,
  ...(u.imageTokens !== undefined ? { prompt_tokens_details: { image_tokens: u.imageTokens } } : {}),
});

const finishReasonOut = (r: FinishReason): 'stop' | 'length' | 'tool_calls' =>
  r === 'length' || r === 'tool_calls' ? r : 'stop';

/** A tool_call event as the `delta.tool_calls` entry of a chunk: id, type and name on a call's first piece. */
export const toolCallDelta = (ev: { index: number; id?: string; name?: string; arguments?: string }) => ({
  index: ev.index,
  ...(ev.id ? { id: ev.id, type: 'function' as const } : {}),
  function: {
    ...(ev.name !== undefined ? { name: ev.name } : {}),
    ...(ev.arguments !== undefined ? { arguments: ev.arguments } : {}),
  },
});

/** Logprobs in OpenAI's `choices[].logprobs` shape. */
export const openAILogprobs = (lps: TokenLogprob[]) => ({
  content: lps.map((l) => ({ token: l.token, logprob: l.logprob, bytes: l.bytes, top_logprobs: l.top })),
  refusal: null,
});

/** One chat.completion.chunk, in the shape the OpenAI SDK and vLLM clients read. */
export function chatChunk(
  meta: { id: string; created: number; model: string },
  delta: {
    role?: 'assistant';
    content?: string;
    reasoning_content?: string;
    tool_calls?: Array<ReturnType<typeof toolCallDelta>>;
    glimpse_boxes?: BoxOut[];
  },
  finishReason: FinishReason | null = null,
  logprobs?: TokenLogprob[],
) {
  return {
    id: meta.id,
    object: 'chat.completion.chunk' as const,
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        delta,
        logprobs: logprobs ? openAILogprobs(logprobs) : null,
        finish_reason: finishReason ? finishReasonOut(finishReason) : null,
      },
    ],
  };
}

export function chatUsageChunk(meta: { id: string; created: number; model: string }, usage: Usage) {
  return {
    id: meta.id,
    object: 'chat.completion.chunk' as const,
    created: meta.created,
    model: meta.model,
    choices: [],
    usage: openAIUsage(usage),
  };
}

export function chatCompletion(
  meta: { id: string; created: number; model: string },
  a: CollectedAnswer,
  messages?: GenerateRequest['messages'],
) {
  return {
    id: meta.id,
    object: 'chat.completion' as const,
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        // With tool calls and no text, content is null, as OpenAI sends it.
        message: {
          role: 'assistant' as const,
          content: a.toolCalls && !a.text ? null : a.text,
          ...(a.reasoning ? { reasoning_content: a.reasoning } : {}),
          ...(a.toolCalls ? { tool_calls: a.toolCalls } : {}),
          ...boxesField(findBoxes(a.text), messages),
        },
        logprobs: a.logprobs ? openAILogprobs(a.logprobs) : null,
        finish_reason: finishReasonOut(a.finishReason),
      },
    ],
    usage: openAIUsage(a.usage),
    ...mediaField(messages),
  };
}

/** OpenAI's error body: {"error":{"message","type","param","code"}}; every JSON route but /infer answers errors so. */
export function errorBody(e: GlimpseError): {
  error: { message: string; type: string; param: string | null; code: string };
} {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

type ChunkMeta = { id: string; created: number; model: string };

/**
 * The chat.completion.chunk stream: a role chunk first, then a chunk per piece, then (as vLLM
 * does) the finish chunk and, when asked, one usage chunk with no choices; [DONE] at the end.
 * The finish chunk's delta carries `glimpse_boxes` when the answer had grounding boxes; the role
 * chunk carries `glimpse_media` (top level) when the request had documents or videos.
 */
export function chatSseEncoder(
  meta: ChunkMeta,
  opts: { logprobs: boolean; includeUsage: boolean; messages?: GenerateRequest['messages'] },
): SseEncoder {
  let usage: Usage | undefined;
  const scanner = new BoxScanner();
  // A token chunk is the same JSON every time but for its text: made from its two fixed halves
  // (JSON.stringify(chatChunk(...)) byte for byte), not an object tree per token. The delta's raw
  // `{"content":""}` occurs once: inside a string value its quotes would be escaped.
  const empty = JSON.stringify(chatChunk(meta, { content: '' }));
  const at = empty.indexOf('{"content":""}');
  const head = empty.slice(0, at + '{"content":'.length);
  const tail = empty.slice(at + '{"content":""'.length);
  return {
    terminator: '[DONE]',
    // The images are resolved before the stream starts: what became of documents and videos goes first.
    start: (sse) => sse.json({ ...chatChunk(meta, { role: 'assistant', content: '' }), ...mediaField(opts.messages) }),
    event: async (sse, ev) => {
      if (ev.type === 'token') {
        scanner.push(ev.text);
        if (opts.logprobs) await sse.json(chatChunk(meta, { content: ev.text }, null, ev.logprobs ?? []));
        else await sse.jsonText(head + JSON.stringify(ev.text) + tail);
      } else if (ev.type === 'reasoning') await sse.json(chatChunk(meta, { reasoning_content: ev.text }));
      else if (ev.type === 'tool_call') await sse.json(chatChunk(meta, { tool_calls: [toolCallDelta(ev)] }));
      else if (ev.type === 'usage') usage = ev.usage;
      else if (ev.type === 'done' && ev.finishReason !== 'cancelled') {
        await sse.json(chatChunk(meta, { content: '', ...boxesField(scanner.boxes, opts.messages) }, ev.finishReason));
        if (opts.includeUsage && usage) await sse.json(chatUsageChunk(meta, usage));
      }
    },
    error: (sse, err) => sse.json(errorBody(err)),
  };
}

/** What every chat answer names: a fresh id, the time, and the model the request resolved to. */
export function chatMeta(req: Pick<GenerateRequest, 'model'>): ChunkMeta {
  return { id: completionId(), created: Math.floor(Date.now() / 1000), model: req.model };
}
