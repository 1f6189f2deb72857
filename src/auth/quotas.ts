/**
 * Quotas per API key: requests started and tokens used (prompt + completion) per minute. Counted
 * in fixed one-minute windows, in memory or, with --redis-url, in Redis so every instance behind a
 * load balancer shares the same counts. A key over a limit gets 429 `quota_exceeded` with
 * Retry-After until its window turns. Tokens are known only once a generation ends, so a token
 * limit refuses the requests that start after the minute's tokens are spent.
 *
 * The check sits in front of the generation pipeline, the one door every API shape (HTTP, SSE,
 * WebSocket) goes through. Without API keys there is no one to count against; quotas are off.
 */
import { Redis } from 'ioredis';
import { GlimpseError, tap, withIterator } from '../core/index.js';

export interface QuotaLimits {
  /** Requests a key may start per minute; 0 = no limit. */
  requestsPerMinute: number;
  /** Prompt + completion tokens a key may use per minute; 0 = no limit. */
  tokensPerMinute: number;
}

export interface QuotaSettings extends QuotaLimits {
  /** Limits for particular keys, by key name, over the defaults above. */
  byKey: Record<string, Partial<QuotaLimits>>;
}

/** A counter per key that expires by itself. */
export interface QuotaCounter {
  /** Add to a counter (creating it with this lifetime) and return its new value. */
  add(key: string, amount: number, ttlMs: number): Promise<number>;
  get(key: string): Promise<number>;
  close(): Promise<void>;
}

const WINDOW_MS = 60_000;
// Counters outlive their window a little, so a late spend still lands in the right minute.
const COUNTER_TTL_MS = 2 * WINDOW_MS;

export function memoryCounter(now: () => number = Date.now): QuotaCounter {
  const counts = new Map<string, { value: number; expiresAt: number }>();
  let swept = now();
  const live = (key: string) => {
    const c = counts.get(key);
    if (c && c.expiresAt <= now()) counts.delete(key);
    return counts.get(key);
  };
  return {
    async add(key, amount, ttlMs) {
      // Expired counters are swept once a window, so memory stays at about two windows of keys.
      if (now() - swept >= WINDOW_MS) {
        swept = now();
        for (const k of [...counts.keys()]) live(k);
      }
      const c = live(key) ?? { value: 0, expiresAt: now() + ttlMs };
      c.value += amount;
      counts.set(key, c);
      return c.value;
    },
    async get(key) {
      return live(key)?.value ?? 0;
    },
    async close() {
      counts.clear();
    },
  };
}

export function redisCounter(url: string, onError: (err: Error) => void, prefix = 'glimpse:quota:'): QuotaCounter {
  // Same stance as the answer cache: a Redis that is down or slow fails fast, never stalls a request.
  const client = new Redis(url, {
    enableOfflineQueue: false,
    commandTimeout: 500,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
  });
  client.on('error', onError);
  return {
    async add(key, amount, ttlMs) {
      const res = await client
        .multi()
        .incrby(prefix + key, amount)
        .pexpire(prefix + key, ttlMs, 'NX')
        .exec();
      const [err, value] = res?.[0] ?? [new Error('no reply from Redis'), 0];
      if (err) throw err;
      return Number(value);
    },
    async get(key) {
      return Number((await client.get(prefix + key)) ?? 0);
    },
    async close() {
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/** The slice of the generation pipeline quotas wrap (kept structural: auth does not import server/). */
export interface QuotaPipeline {
  open(req: { keyId?: string }, signal: AbortSignal, opts?: object): Promise<AsyncIterable<{ type: string }>>;
}

/** Whether any limit is set, by default or for some key. */
export function quotasEnabled(s: QuotaSettings): boolean {
  const any = (l: Partial<QuotaLimits>) => (l.requestsPerMinute ?? 0) > 0 || (l.tokensPerMinute ?? 0) > 0;
  return any(s) || Object.values(s.byKey).some(any);
}

export class Quotas {
  constructor(
    private readonly settings: QuotaSettings,
    private readonly counter: QuotaCounter,
    private readonly onError: (err: Error) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  limitsFor(keyId: string): QuotaLimits {
    const own = Object.hasOwn(this.settings.byKey, keyId) ? this.settings.byKey[keyId] : undefined;
    return {
      requestsPerMinute: own?.requestsPerMinute ?? this.settings.requestsPerMinute,
      tokensPerMinute: own?.tokensPerMinute ?? this.settings.tokensPerMinute,
    };
  }

  private window(): { id: number; resetSeconds: number } {
    const t = this.now();
    const id = Math.floor(t / WINDOW_MS);
    return { id, resetSeconds: Math.max(1, Math.ceil(((id + 1) * WINDOW_MS - t) / 1000)) };
  }

  private exceeded(
    keyId: string,
    what: string,
    limit: number,
    setting: string,
    resetSeconds: number,
    headers: Record<string, string>,
  ): GlimpseError {
    return new GlimpseError(
      'quota_exceeded',
      `API key '${keyId}' has used its ${limit} ${what} per minute (${setting}); the next minute starts in ${resetSeconds} s.`,
      {
        headers,
        retryAfterSeconds: resetSeconds,
      },
    );
  }

  /**
   * Count one request for this key, or throw quota_exceeded. Returns the key's standing as the
   * x-ratelimit-* headers OpenAI's API sends. A counter that cannot be reached lets the request through.
   */
  async admit(keyId: string): Promise<Record<string, string>> {
    const limits = this.limitsFor(keyId);
    const { id, resetSeconds } = this.window();
    const headers: Record<string, string> = {};
    const stand = (kind: 'requests' | 'tokens', limit: number, used: number) => {
      headers[`x-ratelimit-limit-${kind}`] = String(limit);
      headers[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, limit - used));
      headers[`x-ratelimit-reset-${kind}`] = `${resetSeconds}s`;
    };
    try {
      if (limits.tokensPerMinute > 0) {
        const used = await this.counter.get(`t:${keyId}:${id}`);
        stand('tokens', limits.tokensPerMinute, used);
        if (used >= limits.tokensPerMinute)
          throw this.exceeded(keyId, 'tokens', limits.tokensPerMinute, 'quotas.tokensPerMinute', resetSeconds, headers);
      }
      if (limits.requestsPerMinute > 0) {
        const n = await this.counter.add(`r:${keyId}:${id}`, 1, COUNTER_TTL_MS);
        stand('requests', limits.requestsPerMinute, n);
        if (n > limits.requestsPerMinute)
          throw this.exceeded(
            keyId,
            'requests',
            limits.requestsPerMinute,
            'quotas.requestsPerMinute',
            resetSeconds,
            headers,
          );
      }
    } catch (err) {
      if (err instanceof GlimpseError) throw err;
      this.onError(err as Error);
    }
    return headers;
  }

  /** Add a finished generation's tokens to this key's minute. */
  async spend(keyId: string, tokens: number): Promise<void> {
    if (tokens <= 0 || this.limitsFor(keyId).tokensPerMinute <= 0) return;
    try {
      await this.counter.add(`t:${keyId}:${this.window().id}`, tokens, COUNTER_TTL_MS);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  /** Wrap a pipeline: requests with a key are admitted against its quota, and their usage is spent. */
  /**
   * Wrap a pipeline: requests with a key are admitted against its quota, and their usage is spent.
   * The key's standing travels as a value: on the opened stream (`quota`), or on the error when
   * opening fails after admission, so every answer can carry the x-ratelimit-* headers.
   */
  guard<P extends QuotaPipeline>(pipeline: P): P {
    const open = pipeline.open.bind(pipeline);
    const wrapped = Object.create(pipeline) as P;
    wrapped.open = (async (req: { keyId?: string }, signal: AbortSignal, opts?: object) => {
      const keyId = req.keyId;
      if (keyId === undefined) return open(req, signal, opts);
      const standing = await this.admit(keyId);
      let stream: AsyncIterable<{ type: string; usage?: { promptTokens: number; completionTokens: number } }>;
      try {
        stream = await open(req, signal, opts);
      } catch (err) {
        if (err instanceof GlimpseError) Object.assign(err.headers, standing);
        throw err;
      }
      const spend = (tokens: number) => void this.spend(keyId, tokens);
      return Object.assign(
        withIterator(stream, () =>
          tap(stream, (ev) => {
            if (ev.type === 'usage' && ev.usage) spend(ev.usage.promptTokens + ev.usage.completionTokens);
          })[Symbol.asyncIterator](),
        ),
        { quota: standing },
      );
    }) as P['open'];
    return wrapped;
  }

  close(): Promise<void> {
    return this.counter.close();
  }
}
