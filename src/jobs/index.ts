/**
 * Async jobs: one JobQueue interface (./types.ts), two stores. Without --redis-url the jobs live on
 * local disk under the state directory (./embedded.ts) and this instance runs them; with it they
 * live in Redis Streams (./redis.ts), shared by every instance.
 */
import { EmbeddedJobQueue } from './embedded.js';
import { RedisJobQueue } from './redis.js';
import type { JobQueue, JobRunner, JobSettings, Log } from './types.js';
import type { WebhookTransport } from './webhook.js';

export { checkWebhookUrl, deliverWebhook, signWebhook, type Delivery, type WebhookSettings } from './webhook.js';
export { EmbeddedJobQueue } from './embedded.js';
export { RedisJobQueue } from './redis.js';
export { Journal, storageError, type JournalRecord } from './journal.js';
export * from './types.js';

export function createJobQueue(
  where: { redisUrl?: string; stateDir: string },
  settings: JobSettings,
  run: JobRunner,
  log: Log,
  transport: WebhookTransport = {},
): JobQueue {
  return where.redisUrl
    ? new RedisJobQueue(where.redisUrl, settings, run, log, 'glimpse:jobs:', transport)
    : new EmbeddedJobQueue(where.stateDir, settings, run, log, transport);
}
