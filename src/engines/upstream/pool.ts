/**
 * A pool of OpenAI-compatible servers that serve the same models. Routing: least outstanding
 * requests among the members that are up (active health check passing, breaker not open),
 * ties taken in turn. Active checks (GET /models every interval) take a dead server out and put
 * it back when it answers; the breaker ejects a server that fails real requests.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { CircuitBreaker, type BreakerState } from './breaker.js';

export interface PoolOptions {
  bases: string[];
  apiKey?: string;
  breakerThreshold: number;
  breakerCooldownMs: number;
  /** 0: no active checks. */
  healthIntervalMs: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

export interface PoolMember {
  readonly base: string;
  outstanding: number;
  /** Last active check result (undefined before the first). */
  healthy: boolean | undefined;
  lastError?: string;
  readonly breaker: CircuitBreaker;
}

export interface MemberStats {
  base: string;
  outstanding: number;
  healthy: boolean | undefined;
  breaker: BreakerState;
  lastError?: string;
}

export class UpstreamPool {
  readonly members: PoolMember[];
  readonly dispatcher: Dispatcher;
  private turn = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: PoolOptions) {
    this.members = opts.bases.map((b) => ({
      base: b.replace(/\/+$/, ''),
      outstanding: 0,
      healthy: undefined,
      breaker: new CircuitBreaker({ threshold: opts.breakerThreshold, cooldownMs: opts.breakerCooldownMs }),
    }));
    this.dispatcher = new Agent({
      keepAliveTimeout: 30_000,
      connections: 256,
      connect: { timeout: opts.connectTimeoutMs },
      headersTimeout: opts.headersTimeoutMs,
      bodyTimeout: opts.bodyTimeoutMs,
    });
  }

  authHeaders(): Record<string, string> {
    return this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {};
  }

  /** Probe every member now, then keep probing in the background. */
  async start(): Promise<void> {
    await this.checkAll();
    if (this.opts.healthIntervalMs > 0 && !this.closed) {
      this.timer = setInterval(() => void this.checkAll(), this.opts.healthIntervalMs);
      this.timer.unref?.();
    }
  }

  async checkAll(): Promise<void> {
    await Promise.all(this.members.map((m) => this.check(m)));
  }

  private async check(m: PoolMember): Promise<void> {
    const timeout = Math.min(5000, Math.max(500, this.opts.healthIntervalMs || 5000));
    try {
      const res = await request(`${m.base}/models`, { method: 'GET', headers: this.authHeaders(), dispatcher: this.dispatcher, headersTimeout: timeout, bodyTimeout: timeout, signal: AbortSignal.timeout(timeout) });
      await res.body.dump();
      m.healthy = res.statusCode < 500;
      if (!m.healthy) m.lastError = `GET /models answered ${res.statusCode}`;
    } catch (err) {
      m.healthy = false;
      m.lastError = `GET /models failed: ${(err as Error).message}`;
    }
  }

  /** Is any member routable (used for the engine's health)? */
  anyUp(): boolean {
    return this.members.some((m) => m.healthy !== false && m.breaker.available());
  }

  /**
   * Choose a member for one attempt and claim it (outstanding + 1, the breaker's probe if
   * half-open). Members in `avoid` (already tried for this request) are used only when nothing
   * else is left. Members failing their active check are a last resort too: the check may be
   * stale, and trying beats refusing. Undefined when every breaker is open.
   */
  acquire(avoid: ReadonlySet<PoolMember>): PoolMember | undefined {
    const tiers = [
      this.members.filter((m) => !avoid.has(m) && m.healthy !== false),
      this.members.filter((m) => avoid.has(m) && m.healthy !== false),
      this.members.filter((m) => m.healthy === false),
    ];
    for (const tier of tiers) {
      const candidates = tier.filter((m) => m.breaker.available());
      if (!candidates.length) continue;
      const least = Math.min(...candidates.map((m) => m.outstanding));
      const best = candidates.filter((m) => m.outstanding === least);
      const pick = best[this.turn++ % best.length]!;
      if (!pick.breaker.tryAcquire()) continue;
      pick.outstanding++;
      return pick;
    }
    return undefined;
  }

  /** End of one attempt: free the member and tell its breaker how it went. */
  release(m: PoolMember, verdict: 'success' | 'failure' | 'neutral'): void {
    m.outstanding = Math.max(0, m.outstanding - 1);
    if (verdict === 'success') m.breaker.onSuccess();
    else if (verdict === 'failure') m.breaker.onFailure();
    else m.breaker.onNeutral();
  }

  stats(): MemberStats[] {
    return this.members.map((m) => ({ base: m.base, outstanding: m.outstanding, healthy: m.healthy, breaker: m.breaker.current, ...(m.lastError ? { lastError: m.lastError } : {}) }));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.dispatcher.destroy();
  }
}
