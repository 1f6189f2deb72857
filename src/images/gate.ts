/**
 * At most N image normalizations at once. Images are decoded before a request is admitted to the
 * engine, so without a gate a burst of image requests would all decode together: memory grows
 * with the burst, and libuv's threadpool (which sharp shares with DNS lookups and file reads) stays
 * full. Decoding is CPU-bound and libvips already spreads one image over every core, so more
 * parallel decodes than cores buys no throughput. Waiters are served in arrival order and leave
 * the queue when their request is cancelled.
 */
import { cpus } from 'node:os';

export class DecodeGate {
  private running = 0;
  private readonly waiting: Array<{ start: () => void; fail: (err: unknown) => void }> = [];

  constructor(readonly limit: number) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    if (this.running >= this.limit) await this.wait(signal);
    else this.running++;
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private wait(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter, so `running` never dips and lets a newcomer jump the queue.
    if (next) next.start();
    else this.running--;
  }
}

const gates = new Map<number, DecodeGate>();

/** The process-wide gate for this limit (0 = one per CPU core). */
export function decodeGate(limit: number): DecodeGate {
  const n = limit > 0 ? limit : Math.max(1, cpus().length);
  let gate = gates.get(n);
  if (!gate) gates.set(n, (gate = new DecodeGate(n)));
  return gate;
}
