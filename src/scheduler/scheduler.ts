/**
 * Admission control for one engine: at most `maxInFlight` generations run at once; beyond that
 * requests wait in a bounded FIFO queue (one FIFO per API key, served round robin so one busy
 * key cannot starve the others), each for at most `queueTimeoutMs`. Everything else is refused
 * at once with a reason: a full queue answers queue_full with Retry-After without doing any work.
 *
 * Background work (async jobs) comes second: it gets a slot only when no interactive request is
 * waiting, never takes the last `interactiveReserve` slots, and waits in its own FIFO without a
 * timeout or a length limit (the job queue is its queue; its workers bound how many wait here).
 */
import { GlimpseError } from '../core/index.js';

export interface SchedulerOptions {
  /** Generations in flight at once. */
  maxInFlight: number;
  /** Requests allowed to wait beyond maxInFlight (0: no queue, refuse at once). */
  maxQueue: number;
  /** How long one request may wait in the queue. */
  queueTimeoutMs: number;
  /** Slots background work may never take, so an interactive request finds one free (default 0). */
  interactiveReserve?: number;
}

export interface AcquireOptions {
  /** Fairness bucket: requests of one key queue behind each other, keys take turns. */
  keyId?: string;
  /** Aborting (client gone) leaves the queue at once. */
  signal?: AbortSignal;
  /** Called with the 1-based queue position when the request has to wait, and again when it moves. */
  onPosition?: (position: number) => void;
  /** Background work (async jobs): served after every interactive request, never refused or timed out for waiting. */
  background?: boolean;
}

/** A held place among the in-flight generations. release() is idempotent. */
export interface Slot {
  /** ms spent waiting in the queue (0 when admitted at once). */
  readonly waitedMs: number;
  /** Position the request had when it joined the queue (0 when admitted at once). */
  readonly queuedAt: number;
  release(): void;
}

export interface SchedulerStats {
  inFlight: number;
  queued: number;
  /** Background work waiting for a slot (not counted in `queued` or against maxQueue). */
  queuedBackground: number;
  maxInFlight: number;
  maxQueue: number;
  admitted: number;
  rejectedFull: number;
  timedOut: number;
  abandoned: number;
  draining: boolean;
}

interface Waiter {
  key: string;
  enqueuedAt: number;
  firstPosition: number;
  lastPosition: number;
  timer: NodeJS.Timeout;
  resolve: (slot: Slot) => void;
  reject: (err: GlimpseError) => void;
  cleanup: () => void;
  onPosition?: (position: number) => void;
}

const ANON = '\u0000anonymous';

export class Scheduler {
  private readonly opts: SchedulerOptions;
  private running = 0;
  private waiting = 0;
  /** Per-key FIFOs and the round-robin order of keys that have waiters. */
  private readonly queues = new Map<string, Waiter[]>();
  private readonly rotation: string[] = [];
  private cursor = 0;
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  private positionsDirty = false;
  /** Exponentially weighted mean of how long a slot is held, for Retry-After. */
  private meanHoldMs = 0;
  private readonly counters = { admitted: 0, rejectedFull: 0, timedOut: 0, abandoned: 0 };
  /** Background waiters, first come first served. */
  private background: Array<{ resolve: (slot: Slot) => void; reject: (err: GlimpseError) => void; cleanup: () => void; enqueuedAt: number }> = [];

  constructor(opts: SchedulerOptions) {
    if (!(opts.maxInFlight >= 1)) throw new RangeError('maxInFlight must be at least 1');
    if (!(opts.maxQueue >= 0)) throw new RangeError('maxQueue must be 0 or more');
    this.opts = { ...opts };
  }

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting;
  }

  stats(): SchedulerStats {
    return {
      inFlight: this.running,
      queued: this.waiting,
      queuedBackground: this.background.length,
      maxInFlight: this.opts.maxInFlight,
      maxQueue: this.opts.maxQueue,
      ...this.counters,
      draining: this.draining,
    };
  }

  /**
   * Refuse now, without waiting, if acquire() would refuse at once (full queue, draining).
   * Lets the server skip expensive work (image decoding) for a request that cannot be admitted.
   */
  checkAdmission(): void {
    if (this.draining) throw shuttingDown();
    if (this.running < this.opts.maxInFlight && this.waiting === 0) return;
    if (this.waiting >= this.opts.maxQueue) {
      this.counters.rejectedFull++;
      throw this.queueFull();
    }
  }

  /** A slot now, a slot after waiting, or a GlimpseError: queue_full, queue_timeout, shutting_down, client_closed. */
  acquire(opts: AcquireOptions = {}): Promise<Slot> {
    if (this.draining) return Promise.reject(shuttingDown());
    if (opts.signal?.aborted) return Promise.reject(clientClosed());
    if (opts.background) return this.acquireBackground(opts.signal);
    if (this.running < this.opts.maxInFlight && this.waiting === 0) {
      return Promise.resolve(this.grant(0, 0));
    }
    if (this.waiting >= this.opts.maxQueue) {
      this.counters.rejectedFull++;
      return Promise.reject(this.queueFull());
    }
    return new Promise<Slot>((resolve, reject) => {
      const key = opts.keyId ?? ANON;
      const waiter: Waiter = {
        key,
        enqueuedAt: performance.now(),
        firstPosition: 0,
        lastPosition: 0,
        timer: undefined as unknown as NodeJS.Timeout,
        resolve,
        reject,
        cleanup: () => {},
        onPosition: opts.onPosition,
      };
      waiter.timer = setTimeout(() => {
        if (!this.remove(waiter)) return;
        this.counters.timedOut++;
        reject(new GlimpseError('queue_timeout', `Waited ${Math.round(this.opts.queueTimeoutMs / 100) / 10} s in the queue without a free slot; try again later.`, { headers: { 'Retry-After': String(this.retryAfterSeconds()) } }));
      }, this.opts.queueTimeoutMs);
      if (opts.signal) {
        const signal = opts.signal;
        const onAbort = () => {
          if (!this.remove(waiter)) return;
          this.counters.abandoned++;
          reject(clientClosed());
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      let q = this.queues.get(key);
      if (!q) {
        q = [];
        this.queues.set(key, q);
        // A new key joins just before the cursor, so it is served after the keys already waiting this round.
        this.rotation.splice(this.cursor, 0, key);
        this.cursor = (this.cursor + 1) % this.rotation.length;
      }
      q.push(waiter);
      this.waiting++;
      const position = this.positionOf(waiter);
      waiter.firstPosition = position;
      waiter.lastPosition = position;
      if (waiter.onPosition) safeCall(waiter.onPosition, position);
    });
  }

  /** Slots background work may use now: none while interactive requests wait, never the reserve. */
  private backgroundRoom(): boolean {
    const reserve = Math.min(this.opts.interactiveReserve ?? 0, this.opts.maxInFlight - 1);
    return this.waiting === 0 && this.running < this.opts.maxInFlight - reserve;
  }

  private acquireBackground(signal?: AbortSignal): Promise<Slot> {
    if (this.backgroundRoom() && this.background.length === 0) return Promise.resolve(this.grant(0, 0));
    return new Promise<Slot>((resolve, reject) => {
      const entry = { resolve, reject, cleanup: () => {}, enqueuedAt: performance.now() };
      if (signal) {
        const onAbort = () => {
          const i = this.background.indexOf(entry);
          if (i < 0) return;
          this.background.splice(i, 1);
          this.counters.abandoned++;
          reject(clientClosed());
          this.checkIdle();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        entry.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.background.push(entry);
    });
  }

  /**
   * Stop admitting: queued requests are refused with shutting_down, new ones too. Resolves when
   * every in-flight slot has been released.
   */
  drain(): Promise<void> {
    this.draining = true;
    for (const b of this.background.splice(0)) {
      b.cleanup();
      b.reject(shuttingDown());
    }
    for (const key of [...this.rotation]) {
      for (const w of [...(this.queues.get(key) ?? [])]) {
        if (this.remove(w)) w.reject(shuttingDown());
      }
    }
    return this.idle();
  }

  /** Resolves when nothing is in flight and nothing waits. */
  idle(): Promise<void> {
    if (this.running === 0 && this.waiting === 0 && this.background.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Seconds a refused client should wait before trying again, from the current load. */
  retryAfterSeconds(): number {
    const hold = this.meanHoldMs || 1000;
    const ahead = this.waiting + 1;
    const s = Math.ceil((hold * ahead) / this.opts.maxInFlight / 1000);
    return Math.min(60, Math.max(1, s));
  }

  private queueFull(): GlimpseError {
    return new GlimpseError(
      'queue_full',
      `The server is at capacity (${this.opts.maxInFlight} generating, ${this.waiting} waiting); try again shortly.`,
      { headers: { 'Retry-After': String(this.retryAfterSeconds()) } },
    );
  }

  private grant(waitedMs: number, queuedAt: number): Slot {
    this.running++;
    this.counters.admitted++;
    const started = performance.now();
    let released = false;
    return {
      waitedMs,
      queuedAt,
      release: () => {
        if (released) return;
        released = true;
        this.running--;
        const held = performance.now() - started;
        this.meanHoldMs = this.meanHoldMs === 0 ? held : this.meanHoldMs * 0.9 + held * 0.1;
        this.dispatch();
      },
    };
  }

  /** Hand free slots to waiters, taking keys in turn. */
  private dispatch(): void {
    let moved = false;
    while (this.running < this.opts.maxInFlight && this.waiting > 0) {
      const w = this.takeNext();
      if (!w) break;
      moved = true;
      clearTimeout(w.timer);
      w.cleanup();
      w.resolve(this.grant(performance.now() - w.enqueuedAt, w.firstPosition));
    }
    while (this.background.length && this.backgroundRoom()) {
      const b = this.background.shift()!;
      b.cleanup();
      b.resolve(this.grant(performance.now() - b.enqueuedAt, 0));
    }
    if (moved) this.schedulePositionUpdate();
    this.checkIdle();
  }

  private takeNext(): Waiter | undefined {
    if (!this.rotation.length) return undefined;
    if (this.cursor >= this.rotation.length) this.cursor = 0;
    const key = this.rotation[this.cursor]!;
    const q = this.queues.get(key)!;
    const w = q.shift()!;
    this.waiting--;
    if (q.length === 0) {
      this.queues.delete(key);
      this.rotation.splice(this.cursor, 1);
      if (this.cursor >= this.rotation.length) this.cursor = 0;
    } else {
      this.cursor = (this.cursor + 1) % this.rotation.length;
    }
    return w;
  }

  /** Take a waiter out of its queue (timeout, abort, drain). False if it already left. */
  private remove(w: Waiter): boolean {
    const q = this.queues.get(w.key);
    const i = q ? q.indexOf(w) : -1;
    if (!q || i < 0) return false;
    q.splice(i, 1);
    this.waiting--;
    clearTimeout(w.timer);
    w.cleanup();
    if (q.length === 0) {
      const r = this.rotation.indexOf(w.key);
      this.queues.delete(w.key);
      this.rotation.splice(r, 1);
      if (r < this.cursor) this.cursor--;
      if (this.cursor >= this.rotation.length) this.cursor = 0;
    }
    this.schedulePositionUpdate();
    this.checkIdle();
    return true;
  }

  /**
   * 1-based place in the service order: round robin over keys starting at the cursor, FIFO
   * within a key. O(queued); only used when a request joins and in the batched update below.
   */
  private positionOf(target: Waiter): number {
    return this.serviceOrder().get(target) ?? this.waiting;
  }

  private serviceOrder(): Map<Waiter, number> {
    const order = new Map<Waiter, number>();
    const n = this.rotation.length;
    let pos = 1;
    let active = this.rotation.map((_, i) => this.rotation[(this.cursor + i) % n]!).map((k) => this.queues.get(k)!);
    for (let round = 0; active.length; round++) {
      const still: Waiter[][] = [];
      for (const q of active) {
        const w = q[round];
        if (!w) continue;
        order.set(w, pos++);
        if (q.length > round + 1) still.push(q);
      }
      active = still;
    }
    return order;
  }

  /** Positions change in bursts (a slot frees, several leave): tell waiters once per tick. */
  private schedulePositionUpdate(): void {
    if (this.positionsDirty || this.waiting === 0) return;
    this.positionsDirty = true;
    setImmediate(() => {
      this.positionsDirty = false;
      let anyListener = false;
      for (const q of this.queues.values()) if (q.some((w) => w.onPosition)) anyListener = true;
      if (!anyListener) return;
      for (const [w, pos] of this.serviceOrder()) {
        if (pos !== w.lastPosition) {
          w.lastPosition = pos;
          if (w.onPosition) safeCall(w.onPosition, pos);
        }
      }
    });
  }

  private checkIdle(): void {
    if (this.running === 0 && this.waiting === 0 && this.background.length === 0 && this.idleWaiters.length) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of waiters) r();
    }
  }
}

function shuttingDown(): GlimpseError {
  return new GlimpseError('shutting_down', 'The server is shutting down; retry on another instance.', { headers: { 'Retry-After': '1' } });
}

function clientClosed(): GlimpseError {
  return new GlimpseError('client_closed', 'The client went away before the request was admitted.');
}

function safeCall(fn: (n: number) => void, n: number): void {
  try {
    fn(n);
  } catch {
    /* a listener's failure must not break the queue */
  }
}
