/**
 * Admission control, the only queue in the process. Generations run up to what the engine can
 * run now: its `capacity(pool)` per model pool (each upstream replica's limit summed, the
 * embedded engine's free workers), under an optional global ceiling `maxInFlight`; an engine
 * that says nothing gets `maxInFlight` as its limit. Beyond that requests wait in a bounded line
 * (one FIFO per API key, served round robin so one busy key cannot starve the others; a full
 * pool does not hold up requests for another one), each for at most `queueTimeoutMs`.
 * Everything else is refused at once with a reason: a full queue answers queue_full with
 * Retry-After without doing any work.
 *
 * Background work (async jobs) comes second: it gets a slot only when no interactive request for
 * its pool is waiting, never takes the last `interactiveReserve` slots, and waits in its own FIFO
 * without a timeout or a length limit (the job queue is its queue; its workers bound how many
 * wait here).
 */
import { GlimpseError } from '../core/index.js';
import { FairQueue } from './fair-queue.js';
import type { AcquireOptions, SchedulerOptions, SchedulerStats, Slot, Waiter } from './types.js';

const ANON = '\u0000anonymous';
/** The pool of requests that name none (engines with one pool). */
const ONE_POOL = '';
/** Waiters looked past, at most, for one that suits a free slot better (bounds the work per slot). */
const LOOKAHEAD = 32;

const poolName = (pool: string): string | undefined => (pool === ONE_POOL ? undefined : pool);

export class Scheduler {
  private readonly opts: SchedulerOptions;
  private readonly ceiling: number;
  private running = 0;
  private readonly runningIn = new Map<string, number>();
  private readonly waitingIn = new Map<string, number>();
  private readonly line = new FairQueue<Waiter>();
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  private positionsDirty = false;
  /** Exponentially weighted mean of how long a slot is held, for Retry-After. */
  private meanHoldMs = 0;
  private readonly counters = { admitted: 0, rejectedFull: 0, timedOut: 0, abandoned: 0 };
  /** Background waiters, first come first served (within a pool). */
  private background: Waiter[] = [];

  constructor(opts: SchedulerOptions) {
    if (!opts.capacity && !(opts.maxInFlight! >= 1)) throw new RangeError('maxInFlight must be at least 1');
    if (opts.maxInFlight !== undefined && !(opts.maxInFlight >= 1))
      throw new RangeError('maxInFlight must be at least 1');
    if (!(opts.maxQueue >= 0)) throw new RangeError('maxQueue must be 0 or more');
    this.opts = { ...opts };
    this.ceiling = opts.maxInFlight ?? Infinity;
  }

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.line.length;
  }

  stats(): SchedulerStats {
    return {
      inFlight: this.running,
      queued: this.line.length,
      queuedBackground: this.background.length,
      maxInFlight: this.totalCapacity(),
      maxQueue: this.opts.maxQueue,
      ...this.counters,
      draining: this.draining,
    };
  }

  /** The engine's capacity grew (a worker freed, a replica came back, a limit rose): admit waiters. */
  capacityChanged(): void {
    this.dispatch();
  }

  /**
   * Refuse now, without waiting, if acquire() would refuse at once (full queue, draining).
   * Lets the server skip expensive work (reading the body, decoding images) for a request that
   * cannot be admitted.
   */
  checkAdmission(pool?: string): void {
    if (this.draining) throw shuttingDown();
    // Without a pool (before the body, so before the model, is read): refused only when the line
    // is full and nothing anywhere has room, as a request for any model would be.
    const anyRoom = this.running < this.totalCapacity();
    if (pool === undefined ? anyRoom && this.line.length === 0 : this.admitsNow(pool)) return;
    if (this.line.length >= this.opts.maxQueue && (pool !== undefined || !anyRoom)) {
      this.counters.rejectedFull++;
      throw this.queueFull();
    }
  }

  /** A slot now, a slot after waiting, or a GlimpseError: queue_full, queue_timeout, shutting_down, client_closed. */
  acquire(opts: AcquireOptions = {}): Promise<Slot> {
    if (this.draining) return Promise.reject(shuttingDown());
    if (opts.signal?.aborted) return Promise.reject(clientClosed());
    const pool = opts.pool ?? ONE_POOL;
    if (opts.background) return this.acquireBackground(pool, opts.signal);
    if (this.admitsNow(pool)) return Promise.resolve(this.grant(pool, 0, 0));
    if (this.line.length >= this.opts.maxQueue) {
      this.counters.rejectedFull++;
      return Promise.reject(this.queueFull());
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter = newWaiter(opts.keyId ?? ANON, pool, resolve, reject);
      waiter.onPosition = opts.onPosition;
      waiter.affinity = opts.affinity;
      waiter.timer = setTimeout(() => {
        if (!this.remove(waiter)) return;
        this.counters.timedOut++;
        reject(
          new GlimpseError(
            'queue_timeout',
            `Waited ${Math.round(this.opts.queueTimeoutMs / 100) / 10} s in the queue without a free slot; try again later.`,
            { headers: { 'Retry-After': String(this.retryAfterSeconds()) } },
          ),
        );
      }, this.opts.queueTimeoutMs);
      this.onAbort(waiter, opts.signal, () => this.remove(waiter));
      this.line.push(waiter);
      bump(this.waitingIn, pool, 1);
      const position = this.line.serviceOrder().get(waiter) ?? this.line.length;
      waiter.firstPosition = position;
      waiter.lastPosition = position;
      if (waiter.onPosition) safeCall(waiter.onPosition, position);
    });
  }

  /** An aborted waiter leaves its line (if still in it) and is refused with client_closed. */
  private onAbort(w: Waiter, signal: AbortSignal | undefined, leave: () => boolean): void {
    if (!signal) return;
    const onAbort = () => {
      if (!leave()) return;
      this.counters.abandoned++;
      w.reject(clientClosed());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    w.cleanup = () => signal.removeEventListener('abort', onAbort);
  }

  /** Generations the pool can run now (Infinity: only the ceiling bounds it). */
  private capacityOf(pool: string): number {
    if (!this.opts.capacity) return Infinity;
    return this.opts.capacity(poolName(pool));
  }

  private totalCapacity(): number {
    return Math.min(this.ceiling, this.opts.capacity ? this.opts.capacity() : Infinity);
  }

  private hasRoom(pool: string, reserve = 0): boolean {
    const mine = this.runningIn.get(pool) ?? 0;
    const cap = this.capacityOf(pool);
    return (
      this.running < this.ceiling - Math.min(reserve, this.ceiling - 1) &&
      mine < cap - Math.min(reserve, Math.max(0, cap - 1))
    );
  }

  /** Room in the pool and nobody of that pool waiting ahead. */
  private admitsNow(pool: string): boolean {
    return (this.waitingIn.get(pool) ?? 0) === 0 && this.hasRoom(pool);
  }

  /** Slots background work may use now: none while interactive requests of its pool wait, never the reserve. */
  private backgroundRoom(pool: string): boolean {
    return (this.waitingIn.get(pool) ?? 0) === 0 && this.hasRoom(pool, this.opts.interactiveReserve ?? 0);
  }

  private acquireBackground(pool: string, signal?: AbortSignal): Promise<Slot> {
    if (this.backgroundRoom(pool) && !this.background.some((b) => b.pool === pool))
      return Promise.resolve(this.grant(pool, 0, 0));
    return new Promise<Slot>((resolve, reject) => {
      const entry = newWaiter(ANON, pool, resolve, reject);
      this.onAbort(entry, signal, () => {
        const i = this.background.indexOf(entry);
        if (i < 0) return false;
        this.background.splice(i, 1);
        this.checkIdle();
        return true;
      });
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
    for (const w of this.line.all()) if (this.remove(w)) w.reject(shuttingDown());
    return this.idle();
  }

  /** Resolves when nothing is in flight and nothing waits. */
  idle(): Promise<void> {
    if (this.running === 0 && this.line.length === 0 && this.background.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Seconds a refused client should wait before trying again, from the current load. */
  retryAfterSeconds(): number {
    const hold = this.meanHoldMs || 1000;
    const ahead = this.line.length + 1;
    const cap = this.totalCapacity();
    const s = Math.ceil((hold * ahead) / (cap >= 1 && cap < Infinity ? cap : Math.max(1, this.running)) / 1000);
    return Math.min(60, Math.max(1, s));
  }

  private queueFull(): GlimpseError {
    return new GlimpseError(
      'queue_full',
      `The server is at capacity (${this.running} generating, ${this.line.length} waiting); try again shortly.`,
      { headers: { 'Retry-After': String(this.retryAfterSeconds()) } },
    );
  }

  private grant(pool: string, waitedMs: number, queuedAt: number): Slot {
    this.running++;
    bump(this.runningIn, pool, 1);
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
        bump(this.runningIn, pool, -1);
        const held = performance.now() - started;
        this.meanHoldMs = this.meanHoldMs === 0 ? held : this.meanHoldMs * 0.9 + held * 0.1;
        this.dispatch();
      },
    };
  }

  /** Hand free slots to waiters, keys in turn, skipping waiters whose pool is full; then to background work. */
  private dispatch(): void {
    let moved = false;
    // Built per round only when someone waits: dispatch runs on every release.
    const placing = this.line.length > 0 ? this.placing() : undefined;
    while (this.line.length > 0 && this.running < this.ceiling) {
      const room = (x: Waiter) => this.hasRoom(x.pool);
      const w = placing
        ? this.line.takePreferring(room, placing.suits, LOOKAHEAD, placing.passed)
        : this.line.take(room);
      if (!w) break;
      placing?.taken(w);
      bump(this.waitingIn, w.pool, -1);
      moved = true;
      clearTimeout(w.timer);
      w.cleanup();
      w.resolve(this.grant(w.pool, performance.now() - w.enqueuedAt, w.firstPosition));
    }
    for (let i = 0; i < this.background.length;) {
      const b = this.background[i]!;
      if (!this.backgroundRoom(b.pool)) {
        i++;
        continue;
      }
      this.background.splice(i, 1);
      b.cleanup();
      b.resolve(this.grant(b.pool, performance.now() - b.enqueuedAt, 0));
    }
    if (moved) this.schedulePositionUpdate();
    this.checkIdle();
  }

  /**
   * For one dispatch round, when the engine places requests by affinity: a waiter suits the free
   * slots if it has no home, its home has room (less what this round already gave it), or it was
   * passed over `maxSkips` times already. So a slot freed on replica X goes first to a request
   * whose image X holds, while no replica idles for it (a waiter that suits nowhere is still
   * taken when none suits better) and no request is passed over without end.
   */
  private placing():
    { suits: (w: Waiter) => boolean; passed: (w: Waiter) => void; taken: (w: Waiter) => void } | undefined {
    const home = this.opts.home;
    const maxSkips = this.opts.maxSkips ?? 0;
    if (!home || maxSkips <= 0) return undefined;
    const given = new Map<string, number>();
    const where = (w: Waiter) => (w.affinity === undefined ? undefined : home(poolName(w.pool), w.affinity));
    return {
      suits: (w) => {
        if (w.skipped >= maxSkips) return true;
        const h = where(w);
        return !h || h.free - (given.get(h.id) ?? 0) > 0;
      },
      passed: (w) => {
        w.skipped++;
      },
      taken: (w) => {
        const h = where(w);
        if (h) given.set(h.id, (given.get(h.id) ?? 0) + 1);
      },
    };
  }

  /** Take a waiter out of the line (timeout, abort, drain). False if it already left. */
  private remove(w: Waiter): boolean {
    if (!this.line.remove(w)) return false;
    bump(this.waitingIn, w.pool, -1);
    clearTimeout(w.timer);
    w.cleanup();
    this.schedulePositionUpdate();
    this.checkIdle();
    return true;
  }

  /** Positions change in bursts (a slot frees, several leave): tell waiters once per tick. */
  private schedulePositionUpdate(): void {
    if (this.positionsDirty || this.line.length === 0) return;
    this.positionsDirty = true;
    setImmediate(() => {
      this.positionsDirty = false;
      const waiters = this.line.all();
      if (!waiters.some((w) => w.onPosition)) return;
      for (const [w, pos] of this.line.serviceOrder()) {
        if (pos !== w.lastPosition) {
          w.lastPosition = pos;
          if (w.onPosition) safeCall(w.onPosition, pos);
        }
      }
    });
  }

  private checkIdle(): void {
    if (this.running === 0 && this.line.length === 0 && this.background.length === 0 && this.idleWaiters.length) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of waiters) r();
    }
  }
}

function newWaiter(key: string, pool: string, resolve: Waiter['resolve'], reject: Waiter['reject']): Waiter {
  return {
    key,
    pool,
    enqueuedAt: performance.now(),
    firstPosition: 0,
    lastPosition: 0,
    resolve,
    reject,
    cleanup: () => {},
    skipped: 0,
  };
}

function bump(counts: Map<string, number>, pool: string, by: number): void {
  const n = (counts.get(pool) ?? 0) + by;
  if (n <= 0) counts.delete(pool);
  else counts.set(pool, n);
}

function shuttingDown(): GlimpseError {
  return new GlimpseError('shutting_down', 'The server is shutting down; retry on another instance.', {
    headers: { 'Retry-After': '1' },
  });
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
