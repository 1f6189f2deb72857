/**
 * The waiting line of the scheduler: one FIFO per API key, keys served round robin so one busy
 * key cannot starve the others. `take` hands out the first waiter in that order that a caller's
 * test accepts (a waiter whose model pool has room), so a full pool never holds up requests for
 * another one, while within a pool the order stays fair.
 */

export interface Queued {
  readonly key: string;
}

export class FairQueue<W extends Queued> {
  private readonly queues = new Map<string, W[]>();
  private readonly rotation: string[] = [];
  private cursor = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(w: W): void {
    let q = this.queues.get(w.key);
    if (!q) {
      q = [];
      this.queues.set(w.key, q);
      // A new key joins just before the cursor, so it is served after the keys already waiting this round.
      this.rotation.splice(this.cursor, 0, w.key);
      this.cursor = (this.cursor + 1) % this.rotation.length;
    }
    q.push(w);
    this.count++;
  }

  /** The next waiter in service order that `ok` accepts, taken out of the line; undefined if none. */
  take(ok: (w: W) => boolean): W | undefined {
    const next = this.next(ok);
    return next && this.takeAt(next.at, next.j);
  }

  /**
   * Like take, but when the next waiter is not one `prefer` likes, the following acceptable ones
   * (at most `lookahead`, in service order) are looked at and the first it likes is taken
   * instead; the waiters it passed are handed to `passed` (so the caller can bound how often one
   * is passed: `prefer` should like a waiter passed too often). None liked: the next is taken.
   * Taking a later waiter leaves the round robin's cursor where it was.
   */
  takePreferring(
    ok: (w: W) => boolean,
    prefer: (w: W) => boolean,
    lookahead: number,
    passed: (w: W) => void,
  ): W | undefined {
    const next = this.next(ok);
    if (!next) return undefined;
    const first = this.queues.get(this.rotation[next.at]!)![next.j]!;
    if (prefer(first)) return this.takeAt(next.at, next.j);
    const ahead: W[] = [first];
    for (const w of this.ordered()) {
      if (ahead.length > lookahead) break;
      if (w === first || !ok(w)) continue;
      if (prefer(w)) {
        ahead.forEach(passed);
        this.remove(w);
        return w;
      }
      ahead.push(w);
    }
    return this.takeAt(next.at, next.j);
  }

  /** Where `take` would take from: the rotation index of the key and the index in its FIFO. */
  private next(ok: (w: W) => boolean): { at: number; j: number } | undefined {
    const n = this.rotation.length;
    if (this.cursor >= n) this.cursor = 0;
    for (let i = 0; i < n; i++) {
      const at = (this.cursor + i) % n;
      const j = this.queues.get(this.rotation[at]!)!.findIndex(ok);
      if (j >= 0) return { at, j };
    }
    return undefined;
  }

  private takeAt(at: number, j: number): W {
    const key = this.rotation[at]!;
    const q = this.queues.get(key)!;
    const [w] = q.splice(j, 1);
    this.count--;
    if (q.length === 0) {
      this.queues.delete(key);
      this.rotation.splice(at, 1);
      this.cursor = this.rotation.length ? at % this.rotation.length : 0;
    } else {
      this.cursor = (at + 1) % this.rotation.length;
    }
    return w!;
  }

  /** Take a waiter out (timeout, abort, drain). False if it already left. */
  remove(w: W): boolean {
    const q = this.queues.get(w.key);
    const i = q ? q.indexOf(w) : -1;
    if (!q || i < 0) return false;
    q.splice(i, 1);
    this.count--;
    if (q.length === 0) {
      const r = this.rotation.indexOf(w.key);
      this.queues.delete(w.key);
      this.rotation.splice(r, 1);
      if (r < this.cursor) this.cursor--;
      if (this.cursor >= this.rotation.length) this.cursor = 0;
    }
    return true;
  }

  all(): W[] {
    return [...this.queues.values()].flat();
  }

  /**
   * 1-based place of every waiter in the service order: round robin over keys from the cursor,
   * FIFO within a key. O(queued); used when a request joins and in batched position updates.
   */
  serviceOrder(): Map<W, number> {
    const order = new Map<W, number>();
    let pos = 1;
    for (const w of this.ordered()) order.set(w, pos++);
    return order;
  }

  /** Every waiter in service order: round robin over keys from the cursor, FIFO within a key. */
  private *ordered(): Generator<W> {
    const n = this.rotation.length;
    let active = this.rotation.map((_, i) => this.queues.get(this.rotation[(this.cursor + i) % n]!)!);
    for (let round = 0; active.length; round++) {
      const still: W[][] = [];
      for (const q of active) {
        const w = q[round];
        if (!w) continue;
        yield w;
        if (q.length > round + 1) still.push(q);
      }
      active = still;
    }
  }
}
