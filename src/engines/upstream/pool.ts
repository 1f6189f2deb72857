/**
 * A pool of OpenAI-compatible servers. Each member has a limit (limits.ts: set per URL, learned
 * from its /metrics, or adaptive); the pool's capacity, what the scheduler admits against, is
 * the sum of its usable members' limits. Routing: a request with an image goes to the replica
 * that saw the image (affinity.ts, bounded load); otherwise, or when that one is too busy, to
 * the least loaded member (outstanding requests over its limit, the server's own waiting queue
 * counted too), ties taken in turn. Active checks (GET /models every interval) take a dead
 * server out, put it back when it answers, and learn which models it serves; the breaker ejects
 * a server that fails real requests.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { CircuitBreaker } from './breaker.js';
import { ImageAffinity } from './affinity.js';
import { metricsUrl, parseServerGauges, ReplicaLimit, splitLimit, type ServerGauges } from './limits.js';
import { AnswerLengths, SOON } from './turnover.js';
import { memberStats, modelIds, type MemberStats, type PoolMember, type Progress } from './member.js';

export type { MemberStats, PoolMember, Progress } from './member.js';

export interface PoolOptions {
  /** Base URLs, each optionally with its own limit: http://gpu1:8000/v1#max=64. */
  bases: string[];
  apiKey?: string;
  breakerThreshold: number;
  breakerCooldownMs: number;
  /** 0: no active checks. */
  healthIntervalMs: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Limits by base URL (a #max= on the URL wins). */
  limits?: Record<string, number>;
  /** How often each replica's /metrics is read; 0: never (adaptive limits only). */
  metricsIntervalMs?: number;
  initialLimit?: number;
  maxLimit?: number;
  /** Image affinity; absent: routing by load only. */
  affinity?: { loadFactor: number; entries: number };
}

export interface AcquireHints {
  /** The upstream model name: members known to serve another one are not used for it. */
  model?: string;
  /** The request's image affinity key (imageAffinityKey: its images' fingerprints, then fallback prefixes), for affinity. */
  image?: string;
}

/** A replica whose /metrics failed is asked again this many intervals later (servers without it are not pestered). */
const METRICS_RETRY_INTERVALS = 10;

export class UpstreamPool {
  readonly members: PoolMember[];
  readonly dispatcher: Dispatcher;
  private turn = 0;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  private readonly listeners = new Set<() => void>();
  private readonly affinity: ImageAffinity<PoolMember> | undefined;
  private readonly lengths = new AnswerLengths();

  constructor(private readonly opts: PoolOptions) {
    const limitOpts = { initial: opts.initialLimit ?? 8, max: opts.maxLimit ?? 1024 };
    this.members = opts.bases.map((raw) => {
      const { base: withSlash, max } = splitLimit(raw);
      const base = withSlash.replace(/\/+$/, '');
      const configured = max ?? opts.limits?.[raw] ?? opts.limits?.[withSlash] ?? opts.limits?.[base];
      return {
        base,
        outstanding: 0,
        healthy: undefined,
        breaker: new CircuitBreaker({ threshold: opts.breakerThreshold, cooldownMs: opts.breakerCooldownMs }),
        limit: new ReplicaLimit(configured, limitOpts),
        saturated: false,
        soon: 0,
        routed: 0,
        affinityHits: 0,
        nextMetricsAt: 0,
      };
    });
    this.affinity = opts.affinity
      ? new ImageAffinity(this.members, opts.affinity.loadFactor, opts.affinity.entries)
      : undefined;
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

  /** Probe every member now, then keep probing (and reading gauges) in the background. */
  async start(): Promise<void> {
    await Promise.all([this.checkAll(), this.pollMetrics()]);
    if (this.closed) return;
    const every = (ms: number, fn: () => Promise<void>) => {
      const t = setInterval(() => void fn(), ms);
      t.unref?.();
      this.timers.push(t);
    };
    if (this.opts.healthIntervalMs > 0) every(this.opts.healthIntervalMs, () => this.checkAll());
    if (this.opts.metricsIntervalMs) every(this.opts.metricsIntervalMs, () => this.pollMetrics());
  }

  /** Hear when capacity may have grown (a member came back, a limit rose). Returns the unsubscribe function. */
  onCapacityChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private grew(): void {
    for (const l of this.listeners) {
      try {
        l();
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  async checkAll(): Promise<void> {
    await Promise.all(this.members.map((m) => this.check(m)));
  }

  private async get(url: string, timeoutMs: number): Promise<{ status: number; text: string }> {
    const res = await request(url, {
      method: 'GET',
      headers: this.authHeaders(),
      dispatcher: this.dispatcher,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  private async check(m: PoolMember): Promise<void> {
    const was = this.usable(m);
    try {
      // At least 2 s: a loaded machine (or server) answering a little late is not a dead one.
      const res = await this.get(
        `${m.base}/models`,
        Math.min(5000, Math.max(2000, this.opts.healthIntervalMs || 5000)),
      );
      m.healthy = res.status < 500;
      if (!m.healthy) m.lastError = `GET /models answered ${res.status}`;
      const ids = res.status === 200 ? modelIds(res.text) : undefined;
      if (ids) m.models = ids;
    } catch (err) {
      m.healthy = false;
      m.lastError = `GET /models failed: ${(err as Error).message}`;
    }
    if (!was && this.usable(m)) this.grew();
  }

  /** Read the gauges of every member that is due; a failed read turns its limit adaptive. */
  async pollMetrics(): Promise<void> {
    const every = this.opts.metricsIntervalMs ?? 0;
    if (every <= 0) return;
    const now = performance.now();
    await Promise.all(
      this.members
        .filter((m) => m.nextMetricsAt <= now && m.limit.source !== 'configured')
        .map(async (m) => {
          let gauges: ServerGauges | undefined;
          try {
            const res = await this.get(metricsUrl(m.base), Math.max(250, Math.min(every, 2000)));
            gauges = res.status === 200 ? parseServerGauges(res.text) : undefined;
          } catch {
            gauges = undefined;
          }
          m.gauges = gauges;
          if (!gauges) {
            m.limit.metricsLost();
            m.nextMetricsAt = performance.now() + every * METRICS_RETRY_INTERVALS;
            return;
          }
          const saturated = m.saturated || m.outstanding >= m.limit.runs;
          m.saturated = false;
          if (m.limit.fromGauges(gauges.running, gauges.waiting, saturated, m.outstanding)) this.grew();
        }),
    );
  }

  /**
   * Is any member up (the engine's health and /ready)? Judged by the active checks only: a
   * breaker opened by failing requests decides routing, not whether the server takes traffic.
   */
  anyUp(): boolean {
    return this.members.some((m) => m.healthy !== false);
  }

  private usable(m: PoolMember): boolean {
    return m.healthy !== false && m.breaker.current !== 'open';
  }

  /** Members for a model: those known to serve it; all of them when none is (a /models list can be incomplete). */
  private serving(model: string | undefined): PoolMember[] {
    if (model === undefined) return this.members;
    const known = this.members.filter((m) => !m.models || m.models.includes(model));
    return known.length ? known : this.members;
  }

  /**
   * Requests the pool can take at once now (for a model): its usable members' limits summed;
   * when every breaker is open, those passing their check (routing ignores breakers then too,
   * panic mode); 0 when every member is down.
   */
  capacity(model?: string): number {
    const members = this.serving(model);
    const sum = (ok: (m: PoolMember) => boolean) => members.reduce((n, m) => n + (ok(m) ? m.limit.current : 0), 0);
    return sum((m) => this.usable(m)) || sum((m) => m.healthy !== false);
  }

  /**
   * The usable member that holds an image in its caches (for `model`, when it lists its models),
   * with the requests it takes now; undefined when none is remembered or it cannot be used.
   */
  home(image: string, model?: string): { id: string; free: number } | undefined {
    const m = this.affinity?.known(image);
    if (!m || !this.usable(m) || (model !== undefined && m.models && !m.models.includes(model))) return undefined;
    return { id: m.base, free: m.limit.current - m.outstanding };
  }

  /**
   * Choose a member for one attempt and claim it (outstanding + 1, the breaker's probe if
   * half-open). Members in `avoid` (already tried for this request) are used only when nothing
   * else is left. Members failing their active check are a last resort too: the check may be
   * stale, and trying beats refusing. When every breaker is open, routing ignores them (panic
   * mode, as Envoy does below its panic threshold): ejection exists to shift load onto healthy
   * members, and with none left, refusing everyone for a cooldown because of a few failed
   * requests (one poisonous request retried three times, say) is worse than trying.
   */
  acquire(avoid: ReadonlySet<PoolMember>, hints: AcquireHints = {}): PoolMember | undefined {
    const members = this.serving(hints.model);
    const tiers = [
      members.filter((m) => !avoid.has(m) && m.healthy !== false),
      members.filter((m) => avoid.has(m) && m.healthy !== false),
      members.filter((m) => m.healthy === false),
    ];
    for (const tier of tiers) {
      const candidates = tier.filter((m) => m.breaker.available());
      if (!candidates.length) continue;
      const pick = this.choose(candidates, hints.image);
      if (!pick.breaker.tryAcquire()) continue;
      return this.claim(pick, hints.image);
    }
    if (!members.length) return undefined;
    return this.claim(this.choose(members, undefined), hints.image);
  }

  /** The replica that saw the image, within its bounded load; else the least loaded, ties in turn. */
  private choose(candidates: PoolMember[], image: string | undefined): PoolMember {
    if (image && this.affinity) {
      const found = this.affinity.pick(image, candidates);
      if (found) {
        if (found.hit) found.member.affinityHits++;
        return found.member;
      }
    }
    // A replica at its limit is passed over while another has room: the waiting gauge in the load
    // below is up to a reading old, and must not send a request past one replica's limit (into its
    // own queue) while another runs under its own.
    const open = candidates.filter((m) => m.outstanding < m.limit.current);
    const among = open.length ? open : candidates;
    const load = (m: PoolMember) => (m.outstanding + (m.gauges?.waiting ?? 0)) / m.limit.current;
    const least = Math.min(...among.map(load));
    const best = among.filter((m) => load(m) === least);
    return best[this.turn++ % best.length]!;
  }

  private claim(m: PoolMember, image: string | undefined): PoolMember {
    m.outstanding++;
    m.routed++;
    if (m.outstanding >= m.limit.runs) m.saturated = true;
    // The image now lives in this replica's caches, whichever way it was chosen.
    if (image) this.affinity?.record(image, m);
    return m;
  }

  /**
   * An attempt's answer has reached `steps` decoding steps (0 when sent): how likely it is to end
   * soon goes into its member's odds of a turnover, which decide the one request sent ahead.
   */
  progress(m: PoolMember, track: Progress, steps: number, maxTokens?: number): void {
    const w = this.lengths.weight(steps, maxTokens);
    m.soon += w - track.weight;
    track.weight = w;
    if (this.judge(m)) this.grew();
  }

  /** Set whether one may be sent ahead to the member now; true when that allowance rose. */
  private judge(m: PoolMember): boolean {
    return m.limit.setAhead(!this.lengths.known || m.soon >= SOON);
  }

  /**
   * End of one attempt: free the member and tell its breaker how it went, and its limit what was
   * learned (time to first token with the load it was sent under; refused for load; the answer's
   * length in steps, for the turnover odds).
   */
  release(
    m: PoolMember,
    verdict: 'success' | 'failure' | 'neutral',
    learned?: { ttftMs?: number; sentWith: number; refused?: boolean; track?: Progress; steps?: number },
  ): void {
    const was = this.usable(m);
    m.outstanding = Math.max(0, m.outstanding - 1);
    m.soon = m.outstanding ? m.soon - (learned?.track?.weight ?? 0) : 0;
    if (verdict === 'success') m.breaker.onSuccess();
    else if (verdict === 'failure') m.breaker.onFailure();
    else m.breaker.onNeutral();
    if (learned?.refused) m.limit.refused();
    if (verdict === 'success' && learned?.steps) this.lengths.record(learned.steps);
    const ahead = this.judge(m);
    const grew = learned?.ttftMs !== undefined && m.limit.sample(learned.ttftMs, learned.sentWith);
    // One word to the scheduler, whatever made room.
    if (ahead || grew || (!was && this.usable(m))) this.grew();
  }

  stats(): MemberStats[] {
    return this.members.map(memberStats);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.listeners.clear();
    await this.dispatcher.destroy();
  }
}
