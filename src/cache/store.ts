/** Where cached answers live: memory (LRU bounded by bytes) or Redis. Both store JSON strings. */
import { LRUCache } from 'lru-cache';
import { Redis } from 'ioredis';

export interface NearEntry {
  key: string;
  phashes: string[];
}

export interface AnswerStore {
  readonly kind: 'memory' | 'redis';
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  /** Near-duplicate index: the most recent entries that share a template. */
  nearList(template: string): Promise<NearEntry[]>;
  nearAdd(template: string, entry: NearEntry): Promise<void>;
  /** Resolves true once the store can serve (at once for memory), false if it cannot within `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Entries kept per near-duplicate template; older ones fall off. */
export const NEAR_ENTRIES_PER_TEMPLATE = 32;

export function memoryStore(opts: { maxBytes: number; ttlSeconds: number }): AnswerStore {
  const ttl = opts.ttlSeconds > 0 ? opts.ttlSeconds * 1000 : undefined;
  const answers = new LRUCache<string, string>({
    maxSize: Math.max(1, opts.maxBytes),
    // UTF-16 string memory is about twice its length; count both key and value.
    sizeCalculation: (value, key) => 2 * (value.length + key.length),
    ttl,
  });
  // The index holds only hashes and keys, so it is bounded by entry count rather than bytes.
  const near = new LRUCache<string, NearEntry[]>({ max: 10_000, ttl });
  return {
    kind: 'memory',
    get: async (key) => answers.get(key),
    set: async (key, value) => {
      answers.set(key, value);
    },
    nearList: async (template) => near.get(template) ?? [],
    nearAdd: async (template, entry) => {
      const list = [entry, ...(near.get(template) ?? []).filter((e) => e.key !== entry.key)].slice(
        0,
        NEAR_ENTRIES_PER_TEMPLATE,
      );
      near.set(template, list);
    },
    ready: async () => true,
    close: async () => {
      answers.clear();
      near.clear();
    },
  };
}

export function redisStore(opts: {
  url: string;
  ttlSeconds: number;
  prefix?: string;
  onError?: (err: Error) => void;
}): AnswerStore {
  const prefix = opts.prefix ?? 'glimpse:cache:';
  const client = new Redis(opts.url, {
    // A slow or absent Redis must cost a request a cache miss, not a stall: while disconnected,
    // commands fail at once instead of queueing, and a connected but stuck Redis times out.
    enableOfflineQueue: false,
    commandTimeout: 500,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    lazyConnect: false,
  });
  client.on('error', (err: Error) => opts.onError?.(err));
  const ttl = opts.ttlSeconds;
  return {
    kind: 'redis',
    get: async (key) => (await client.get(prefix + key)) ?? undefined,
    set: async (key, value) => {
      if (ttl > 0) await client.set(prefix + key, value, 'EX', ttl);
      else await client.set(prefix + key, value);
    },
    nearList: async (template) => {
      const raw = await client.lrange(prefix + template, 0, NEAR_ENTRIES_PER_TEMPLATE - 1);
      return raw.flatMap((r) => {
        try {
          return [JSON.parse(r) as NearEntry];
        } catch {
          return [];
        }
      });
    },
    nearAdd: async (template, entry) => {
      const k = prefix + template;
      const multi = client
        .multi()
        .lpush(k, JSON.stringify(entry))
        .ltrim(k, 0, NEAR_ENTRIES_PER_TEMPLATE - 1);
      if (ttl > 0) multi.expire(k, ttl);
      await multi.exec();
    },
    ready: (timeoutMs) =>
      new Promise<boolean>((resolve) => {
        if (client.status === 'ready') return resolve(true);
        const done = (ok: boolean) => {
          clearTimeout(timer);
          client.off('ready', onReady);
          resolve(ok);
        };
        const onReady = () => done(true);
        const timer = setTimeout(() => done(false), timeoutMs);
        client.on('ready', onReady);
      }),
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}
