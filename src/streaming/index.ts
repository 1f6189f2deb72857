export { SseWriter } from './sse.js';
export { collectAnswer, type CollectedAnswer } from './collect.js';
export { chatChunk, chatUsageChunk, chatCompletion, completionId, openAIUsage, toolCallDelta } from './openai.js';
