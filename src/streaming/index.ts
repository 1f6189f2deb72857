export { SseWriter } from './sse.js';
export { collectAnswer, type CollectedAnswer } from './collect.js';
export type { SseEncoder } from './encoder.js';
