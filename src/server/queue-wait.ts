/**
 * A request that has to wait for an engine slot: the wait as values in its stream. The scheduler
 * reports positions through its callback; here they become `queued` events the route reads like
 * any other, then `admitted`, then the generation. Refusals while waiting (queue_timeout,
 * shutting_down) are the stream's error event; a client that left while waiting ends it as
 * done/cancelled, as one that leaves mid-answer does.
 */
import { prepend, toGlimpseError, type GenerateEvent } from '../core/index.js';
import type { Slot } from '../scheduler/index.js';
import type { PipelineEvent } from './pipeline.js';

/** Positions reported synchronously by scheduler.acquire, and any that follow. */
export class PositionFeed {
  private readonly positions: number[] = [];
  private wake: (() => void) | undefined;
  readonly onPosition = (position: number): void => {
    this.positions.push(position);
    this.notify();
  };
  get waiting(): boolean {
    return this.positions.length > 0;
  }
  take(): number[] {
    return this.positions.splice(0);
  }
  notify(): void {
    this.wake?.();
    this.wake = undefined;
  }
  next(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }
}

/** The first event of every opened stream: the request has its slot (queuedAt 0: at once). */
export const admitted = (slot: Pick<Slot, 'waitedMs' | 'queuedAt'>): PipelineEvent => ({
  type: 'admitted',
  waitedMs: slot.waitedMs,
  queuedAt: slot.queuedAt,
});

/** `admitted`, then the generation. */
export function admittedThen(
  slot: Pick<Slot, 'waitedMs' | 'queuedAt'>,
  events: AsyncIterable<GenerateEvent>,
): AsyncIterable<PipelineEvent> {
  return prepend<PipelineEvent>(admitted(slot), events);
}

/** queued events while `acquiring` is pending, then admitted and what `run` starts on the slot. */
export async function* waitThenRun(
  feed: PositionFeed,
  acquiring: Promise<Slot>,
  run: (slot: Slot) => AsyncIterable<GenerateEvent>,
): AsyncGenerator<PipelineEvent> {
  let outcome: { slot: Slot } | { error: unknown } | undefined;
  acquiring
    .then(
      (slot) => (outcome = { slot }),
      (error: unknown) => (outcome = { error }),
    )
    .finally(() => feed.notify());
  let started = false;
  try {
    for (;;) {
      for (const position of feed.take()) yield { type: 'queued', position };
      if (outcome) break;
      await feed.next();
    }
    if ('error' in outcome) {
      const error = toGlimpseError(outcome.error);
      yield error.code === 'client_closed' ? { type: 'done', finishReason: 'cancelled' } : { type: 'error', error };
      return;
    }
    // Started before `admitted` is read: the engine's prefill overlaps with the route's writing.
    const events = run(outcome.slot);
    started = true;
    yield* admittedThen(outcome.slot, events);
  } finally {
    // A reader that stopped while waiting must not leave a slot granted later held forever.
    if (!started)
      acquiring.then(
        (slot) => slot.release(),
        () => {},
      );
  }
}
