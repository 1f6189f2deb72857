import type { GlimpseError } from '../core/index.js';

export interface SchedulerOptions {
  /**
   * Generations in flight at once over every pool. Without `capacity` it is the limit (required);
   * with it, an optional ceiling over what the engine says it can run.
   */
  maxInFlight?: number;
  /**
   * What the engine can run at once right now: for one model's pool, or (no argument) in all.
   * Read at every admission, so a limit learned from the servers applies at once; call
   * capacityChanged() when it grows, so waiters are admitted.
   */
  capacity?: (pool?: string) => number;
  /** Requests allowed to wait beyond what can run (0: no queue, refuse at once). */
  maxQueue: number;
  /** How long one request may wait in the queue. */
  queueTimeoutMs: number;
  /** Slots background work may never take, so an interactive request finds one free (default 0). */
  interactiveReserve?: number;
  /**
   * Where a waiter with an affinity key would like to run (the replica that holds its image in
   * its caches) and how many more that replica takes now; undefined: anywhere suits it. Lets the
   * line hand a freed slot to a waiter whose home has room before one whose home is full.
   */
  home?: (pool: string | undefined, affinity: string) => { id: string; free: number } | undefined;
  /**
   * How many times a waiter may be passed over for one that suits a free slot better (its home
   * has room) before it is taken anyway (default 0: strict service order).
   */
  maxSkips?: number;
}

export interface AcquireOptions {
  /** Fairness bucket: requests of one key queue behind each other, keys take turns. */
  keyId?: string;
  /** The model pool the request runs in (the model it names); pools are admitted apart. */
  pool?: string;
  /** Aborting (client gone) leaves the queue at once. */
  signal?: AbortSignal;
  /** Called with the 1-based queue position when the request has to wait, and again when it moves. */
  onPosition?: (position: number) => void;
  /** Background work (async jobs): served after every interactive request, never refused or timed out for waiting. */
  background?: boolean;
  /** What the request's placement follows (its image's fingerprint), handed to `home`. */
  affinity?: string;
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
  /** Generations that may run at once now (the engine's capacity under the ceiling). */
  maxInFlight: number;
  maxQueue: number;
  admitted: number;
  rejectedFull: number;
  timedOut: number;
  abandoned: number;
  draining: boolean;
}

export interface Waiter {
  key: string;
  pool: string;
  enqueuedAt: number;
  firstPosition: number;
  lastPosition: number;
  timer?: NodeJS.Timeout;
  resolve: (slot: Slot) => void;
  reject: (err: GlimpseError) => void;
  cleanup: () => void;
  onPosition?: (position: number) => void;
  affinity?: string;
  /** Times a later waiter was taken before this one because it suited the free slot better. */
  skipped: number;
}
