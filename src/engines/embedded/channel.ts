/**
 * The per-request event channel between a model worker (which pushes as its messages arrive)
 * and generate() (which pulls at the client's pace).
 */
import type { GenerateEvent } from '../../core/index.js';

/**
 * A minimal async queue: the worker pushes, generate() pulls. `merge` may fold the next queued
 * item into the one being taken: when the consumer lags (slow client, busy event loop), text
 * pieces that piled up go out as one event instead of many, so a backlog drains faster.
 */
export class EventChannel<T> implements AsyncIterable<T> {
  constructor(private readonly merge: (a: T, b: T) => T | null = () => null) {}

  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private closed = false;

  push(item: T): void {
    if (this.closed) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  close(): void {
    this.closed = true;
    if (this.waiting && !this.items.length) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: undefined as never, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length) {
          let value: T = this.items.shift() as T;
          while (this.items.length) {
            const merged = this.merge(value, this.items[0]!);
            if (merged === null) break;
            value = merged;
            this.items.shift();
          }
          return Promise.resolve({ value, done: false });
        }
        if (this.closed) return Promise.resolve({ value: undefined as never, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
    };
  }
}

/** Two text pieces in a row become one (their logprobs joined); anything else stays apart. */
export function mergeTokens(a: GenerateEvent, b: GenerateEvent): GenerateEvent | null {
  if (a.type !== 'token' || b.type !== 'token') return null;
  const logprobs = a.logprobs || b.logprobs ? [...(a.logprobs ?? []), ...(b.logprobs ?? [])] : undefined;
  return { type: 'token', text: a.text + b.text, ...(logprobs ? { logprobs } : {}) };
}
