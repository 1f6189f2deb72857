import { randomBytes } from 'node:crypto';
import type { CollectedAnswer } from './collect.js';
import type { FinishReason, TokenLogprob, Usage } from '../core/index.js';

export const completionId = (prefix = 'chatcmpl-'): string => prefix + randomBytes(12).toString('hex');

export const openAIUsage = (u: Usage) => ({
  prompt_tokens: u.promptTokens,
  completion_tokens: u.completionTokens,
  total_tokens: u.promptTokens + u.completionTokens,
});

const finishReasonOut = (r: FinishReason): 'stop' | 'length' | 'tool_calls' => (r === 'length' || r === 'tool_calls' ? r : 'stop');

/** A tool_call event as the `delta.tool_calls` entry of a chunk: id, type and name on a call's first piece. */
export const toolCallDelta = (ev: { index: number; id?: string; name?: string; arguments?: string }) => ({
  index: ev.index,
  ...(ev.id ? { id: ev.id, type: 'function' as const } : {}),
  function: { ...(ev.name !== undefined ? { name: ev.name } : {}), ...(ev.arguments !== undefined ? { arguments: ev.arguments } : {}) },
});

/** Logprobs in OpenAI's `choices[].logprobs` shape. */
export const openAILogprobs = (lps: TokenLogprob[]) => ({
  content: lps.map((l) => ({ token: l.token, logprob: l.logprob, bytes: l.bytes, top_logprobs: l.top })),
  refusal: null,
});

/** One chat.completion.chunk, in the shape the OpenAI SDK and vLLM clients read. */
export function chatChunk(
  meta: { id: string; created: number; model: string },
  delta: { role?: 'assistant'; content?: string; reasoning_content?: string; tool_calls?: Array<ReturnType<typeof toolCallDelta>> },
  finishReason: FinishReason | null = null,
  logprobs?: TokenLogprob[],
) {
  return {
    id: meta.id,
    object: 'chat.completion.chunk' as const,
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: logprobs ? openAILogprobs(logprobs) : null, finish_reason: finishReason ? finishReasonOut(finishReason) : null }],
  };
}

export function chatUsageChunk(meta: { id: string; created: number; model: string }, usage: Usage) {
  return { id: meta.id, object: 'chat.completion.chunk' as const, created: meta.created, model: meta.model, choices: [], usage: openAIUsage(usage) };
}

export function chatCompletion(meta: { id: string; created: number; model: string }, a: CollectedAnswer) {
  return {
    id: meta.id,
    object: 'chat.completion' as const,
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        // With tool calls and no text, content is null, as OpenAI sends it.
        message: { role: 'assistant' as const, content: a.toolCalls && !a.text ? null : a.text, ...(a.reasoning ? { reasoning_content: a.reasoning } : {}), ...(a.toolCalls ? { tool_calls: a.toolCalls } : {}) },
        logprobs: a.logprobs ? openAILogprobs(a.logprobs) : null,
        finish_reason: finishReasonOut(a.finishReason),
      },
    ],
    usage: openAIUsage(a.usage),
  };
}
