/** What an SSE encoder wrote, frame by frame: the SseWriter methods encoders call, kept in memory. */
import assert from 'node:assert/strict';
import type { SseWriter } from '../../src/streaming/index.js';

export interface Frame {
  data: string;
  event?: string;
}

export function sseRecorder(): { sse: SseWriter; frames: Frame[]; json: () => unknown[] } {
  const frames: Frame[] = [];
  const writer = {
    async data(payload: string, event?: string) {
      frames.push({ data: payload, ...(event ? { event } : {}) });
    },
    async json(value: unknown, event?: string) {
      frames.push({ data: JSON.stringify(value), ...(event ? { event } : {}) });
    },
    async jsonText(text: string, event?: string) {
      assert.doesNotMatch(text, /[\r\n]/, 'jsonText is for JSON without raw line ends');
      frames.push({ data: text, ...(event ? { event } : {}) });
    },
    async comment() {},
  };
  return {
    sse: writer as unknown as SseWriter,
    frames,
    json: () => frames.map((f) => (f.data.startsWith('{') ? JSON.parse(f.data) : f.data)),
  };
}

export const defaults = { model: 'default-model', maxTokens: 7, maxTokensLimit: 100, maxPromptChars: 50 };
export const origin = { id: 'req-1', keyId: 'key-1' };
