/**
 * Whether this process reaches Redis now, for /health. Read from a connection of its own kept
 * open for the purpose, so a health check costs no command and never waits: when Redis goes,
 * the socket closes and the connection is down at once; it reconnects by itself (at most a
 * second apart) and is up again as soon as Redis answers. What goes on meanwhile: interactive
 * requests are served (the answer cache misses, quotas are not enforced), the jobs and batches
 * APIs answer 503 jobs_unavailable.
 */
import { Redis } from 'ioredis';

export interface RedisHealth {
  view(): { status: 'up' | 'down'; note?: string };
  close(): Promise<void>;
}

export function redisHealth(url: string): RedisHealth {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
  // Its errors are the state reported, not news for the log (the job queue and cache log theirs).
  client.on('error', () => {});
  return {
    view: () =>
      client.status === 'ready'
        ? { status: 'up' }
        : {
            status: 'down',
            note: 'Redis cannot be reached: chat is served (no answer cache, no quotas); the jobs and batches APIs answer jobs_unavailable until it is back.',
          },
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}
