import { randomBytes } from 'node:crypto';
import type { CollectedAnswer } from './collect.js';
import type { FinishReason, Usage } from '../core/index.js';

export const completionId = (prefix = 'chatcmpl-'): string => prefix + randomBytes(12).toString('hex');

export const openAIUsage = (u: Usage) => ({
  prompt_tokens: u.promptTokens,
  completion_tokens: u.completionTokens,
  total_tokens: u.promptTokens + u.completionTokens,
});

const finishReasonOut = (r: FinishReason): 'stop' | 'length' => (r === 'length' ? 'length' : 'stop');

/** One chat.completion.chunk, in the shape the OpenAI SDK and vLLM clients read. */
export function chatChunk(
  meta: { id: string; created: number; model: string },
  delta: { role?: 'assistant'; content?: string; reasoning_content?: string },
  finishReason: FinishReason | null = null,
) {
  return {
    id: meta.id,
    object: 'chat.completion.chunk' as const,
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason ? finishReasonOut(finishReason) : null }],
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
        message: { role: 'assistant' as const, content: a.text, ...(a.reasoning ? { reasoning_content: a.reasoning } : {}) },
        logprobs: null,
        finish_reason: finishReasonOut(a.finishReason),
      },
    ],
    usage: openAIUsage(a.usage),
  };
}
