/**
 * The answer cache's door. Routes ask `lookup(req)` after images are resolved and before the
 * request is handed to the engine; on a miss they `store(key, answer, req)` once the answer is
 * complete. Only deterministic requests are cached (temperature 0 or a fixed seed) unless
 * cache.cacheNondeterministic is set; keys include the caller's API key id, so answers never
 * cross keys. Memory LRU bounded by bytes, or Redis when redisUrl is set. A cache failure never
 * fails a request: it counts as a miss.
 */
import type { Config } from '../config/index.js';
import type { FinishReason, GenerateRequest, Usage } from '../core/index.js';
import { hammingDistance } from '../images/index.js';
import { exactKey, isCacheable, isDeterministic, nearKey } from './key.js';
import { memoryStore, redisStore, type AnswerStore } from './store.js';

export { isDeterministic } from './key.js';

export interface CachedAnswer {
  text: string;
  reasoning?: string;
  usage: Usage;
  finishReason: FinishReason;
}

/** What the X-Glimpse-Cache header says. */
export type CacheStatus = 'hit' | 'miss' | 'bypass';

export interface CacheLookup {
  status: CacheStatus;
  /** Where to store the answer on a miss; null on bypass. */
  key: string | null;
  answer?: CachedAnswer;
  /** Set on a near-duplicate hit: the largest Hamming distance among the images. */
  distance?: number;
}

/** Counters since start, for metrics. */
export interface CacheStats {
  hits: number;
  /** Hits found by perceptual-hash distance rather than exact key (also counted in hits). */
  nearHits: number;
  misses: number;
  bypasses: number;
  stores: number;
  /** Store failures (Redis down or slow); each cost a miss, not a request. */
  errors: number;
}

export interface AnswerCache {
  readonly backend: 'memory' | 'redis' | 'off';
  stats(): CacheStats;
  /** Null when the request must not be cached (disabled, sampling, or images not resolved). */
  keyFor(req: GenerateRequest): string | null;
  get(key: string): Promise<CachedAnswer | undefined>;
  /** Store a finished answer. Cancelled answers are not stored. With `req`, also indexes it for near-duplicate reuse. */
  set(key: string, answer: CachedAnswer, req?: GenerateRequest): Promise<void>;
  /** Near-duplicate reuse (cache.nearDuplicateDistance > 0): an answer for the same prompt whose images' perceptual hashes are all within the distance. */
  getNear(req: GenerateRequest): Promise<{ answer: CachedAnswer; distance: number } | undefined>;
  /** keyFor + get (+ getNear when enabled), with the status to report. */
  lookup(req: GenerateRequest): Promise<CacheLookup>;
  /** Resolves true once the backend serves (memory: at once; Redis: once connected), false after `timeoutMs`. Requests before that are misses. */
  ready(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface AnswerCacheOptions {
  /** Called when the store fails (Redis down); the request goes on as a miss. */
  onError?: (err: Error) => void;
}

type CacheConfig = Pick<Config, 'cache' | 'redisUrl'>;

function isCachedAnswer(v: unknown): v is CachedAnswer {
  const a = v as CachedAnswer;
  return (
    typeof a === 'object' &&
    a !== null &&
    typeof a.text === 'string' &&
    typeof a.usage === 'object' &&
    typeof a.finishReason === 'string'
  );
}

export function createAnswerCache(config: CacheConfig, opts: AnswerCacheOptions = {}): AnswerCache {
  const c = config.cache;
  const enabled = c.enabled && (config.redisUrl !== undefined || c.maxBytes > 0);
  const counts: CacheStats = { hits: 0, nearHits: 0, misses: 0, bypasses: 0, stores: 0, errors: 0 };
  const reportError = opts.onError ?? (() => {});
  const onError = (err: Error) => {
    counts.errors++;
    reportError(err);
  };
  const store: AnswerStore | null = !enabled
    ? null
    : config.redisUrl
      ? redisStore({ url: config.redisUrl, ttlSeconds: c.ttlSeconds, onError })
      : memoryStore({ maxBytes: c.maxBytes, ttlSeconds: c.ttlSeconds });

  const safely = async <T>(fn: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      onError(err as Error);
      return fallback;
    }
  };

  const keyFor = (req: GenerateRequest): string | null => {
    if (!store) return null;
    if (!isCacheable(req) || (!isDeterministic(req) && !c.cacheNondeterministic)) return null;
    return exactKey(req);
  };

  const get = (key: string) =>
    safely(async () => {
      if (!store) return undefined;
      const raw = await store.get(key);
      if (raw === undefined) return undefined;
      const v: unknown = JSON.parse(raw);
      return isCachedAnswer(v) ? v : undefined;
    }, undefined);

  const getNear = (req: GenerateRequest) =>
    safely(async () => {
      if (!store || c.nearDuplicateDistance <= 0 || keyFor(req) === null) return undefined;
      const near = nearKey(req);
      if (!near) return undefined;
      let best: { key: string; distance: number } | undefined;
      for (const entry of await store.nearList(near.template)) {
        if (entry.phashes.length !== near.phashes.length) continue;
        const distance = Math.max(...entry.phashes.map((h, i) => hammingDistance(h, near.phashes[i]!)));
        if (distance <= c.nearDuplicateDistance && (!best || distance < best.distance))
          best = { key: entry.key, distance };
      }
      if (!best) return undefined;
      const answer = await get(best.key);
      return answer ? { answer, distance: best.distance } : undefined;
    }, undefined);

  return {
    backend: store ? store.kind : 'off',
    stats: () => ({ ...counts }),
    keyFor,
    get,
    getNear,
    async set(key, answer, req) {
      if (!store || answer.finishReason === 'cancelled') return;
      await safely(async () => {
        await store.set(key, JSON.stringify(answer));
        counts.stores++;
        const near = c.nearDuplicateDistance > 0 && req ? nearKey(req) : null;
        if (near) await store.nearAdd(near.template, { key, phashes: near.phashes });
      }, undefined);
    },
    async lookup(req) {
      const key = keyFor(req);
      if (key === null) {
        counts.bypasses++;
        return { status: 'bypass', key: null };
      }
      const answer = await get(key);
      if (answer) {
        counts.hits++;
        return { status: 'hit', key, answer };
      }
      const near = await getNear(req);
      if (near) {
        counts.hits++;
        counts.nearHits++;
        return { status: 'hit', key, answer: near.answer, distance: near.distance };
      }
      counts.misses++;
      return { status: 'miss', key };
    },
    ready: async (timeoutMs = 2000) => (store ? store.ready(timeoutMs) : true),
    async close() {
      await store?.close();
    },
  };
}
