/**
 * The file and batch store in Redis (the interface: ./batch-store.ts): hashes and sorted sets, so
 * every instance sees every batch and file. Files and ended batches carry Redis expiries, so Redis
 * drops them itself; the sorted sets that index them are tidied as they are read.
 */
import { Redis } from 'ioredis';
import { GlimpseError, isGlimpseError } from '../core/index.js';
import { COUNTED, OPEN, type BatchStore, type Counts } from './batch-store.js';
import { storageError, type JournalRecord } from './journal.js';

// KEYS[1] batch hash, KEYS[2] hash of counted jobs. ARGV: job id, status, counter field. A line
// told after its batch ended (and got its expiry) makes the counted hash expire with the batch.
const COUNT_ENDED = `
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return redis.call('HMGET', KEYS[1], 'total', 'completed', 'failed', 'cancelled')`;

// KEYS[1] batch hash. ARGV: allowed statuses joined by ',', then field, value pairs.
const PATCH_IF = `
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return 0 end
if ARGV[1] ~= '' and not string.find(',' .. ARGV[1] .. ',', ',' .. s .. ',', 1, true) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1`;

type Scripted = Redis & {
  batchCountEnded(
    batch: string,
    counted: string,
    jobId: string,
    status: string,
    field: string,
  ): Promise<Array<string | null>>;
  batchPatchIf(batch: string, allowed: string, ...fields: string[]): Promise<number>;
};

export class RedisBatchStore implements BatchStore {
  private readonly client: Scripted;
  /** Other instances may share it: a batch in finalizing may have a live finalizer elsewhere. */
  readonly exclusive = false;

  constructor(
    url: string,
    private readonly prefix = 'glimpse:batches:',
  ) {
    this.client = new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 2000 }) as Scripted;
    this.client.on('error', () => {}); // reported as jobs_unavailable where it matters
    this.client.defineCommand('batchCountEnded', { numberOfKeys: 2, lua: COUNT_ENDED });
    this.client.defineCommand('batchPatchIf', { numberOfKeys: 1, lua: PATCH_IF });
  }

  private async reach<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (isGlimpseError(err)) throw err;
      if (/OOM/.test((err as Error).message))
        throw storageError(Object.assign(new Error('Redis is out of memory'), { code: 'ENOSPC' }), 'Redis');
      throw new GlimpseError(
        'jobs_unavailable',
        'The file and batch store (Redis) cannot be reached; try again shortly.',
        { headers: { 'Retry-After': '5' }, cause: err },
      );
    }
  }

  async putFile(meta: JournalRecord, content: Buffer): Promise<void> {
    const body = this.prefix + 'content:' + meta.id;
    const file = this.prefix + 'file:' + meta.id;
    const tx = this.client
      .multi()
      .set(body, content)
      .hset(file, meta)
      .zadd(this.prefix + 'files:' + meta.key, meta.created_at!, meta.id!);
    // Redis drops the file itself at its time; the owner's index is tidied as it is read.
    if (meta.drop_ms) tx.pexpireat(body, Number(meta.drop_ms)).pexpireat(file, Number(meta.drop_ms));
    await this.reach(() => tx.exec());
  }

  async file(id: string): Promise<JournalRecord | undefined> {
    return this.reach(async () => {
      const h = await this.client.hgetall(this.prefix + 'file:' + id);
      return h.id ? h : undefined;
    });
  }

  async fileContent(id: string): Promise<Buffer | undefined> {
    return this.reach(async () => (await this.client.getBuffer(this.prefix + 'content:' + id)) ?? undefined);
  }

  async files(owner: string): Promise<JournalRecord[]> {
    return this.reach(async () => {
      return this.present('files:' + owner, (id) => this.file(id));
    });
  }

  async deleteFile(id: string): Promise<void> {
    await this.reach(async () => {
      const [owner] = await this.client.hmget(this.prefix + 'file:' + id, 'key');
      await this.client
        .multi()
        .del(this.prefix + 'file:' + id, this.prefix + 'content:' + id)
        .zrem(this.prefix + 'files:' + (owner ?? ''), id)
        .exec();
    });
  }

  async putBatch(batch: JournalRecord, jobIds: string[], customIds: string[]): Promise<void> {
    const key = this.prefix + 'batch:' + batch.id;
    await this.reach(() =>
      this.client
        .multi()
        .hset(key + ':lines', { jobs: JSON.stringify(jobIds), custom: JSON.stringify(customIds) })
        .hset(key, batch)
        .zadd(this.prefix + 'batches:' + batch.key, batch.created_at!, batch.id!)
        .zadd(this.prefix + 'open', batch.created_at!, batch.id!)
        .exec(),
    );
  }

  async batch(id: string): Promise<JournalRecord | undefined> {
    return this.reach(async () => {
      const h = await this.client.hgetall(this.prefix + 'batch:' + id);
      return h.id ? h : undefined;
    });
  }

  async batchLines(id: string): Promise<{ jobIds: string[]; customIds: string[] }> {
    return this.reach(async () => {
      const [jobs, custom] = await this.client.hmget(this.prefix + 'batch:' + id + ':lines', 'jobs', 'custom');
      return { jobIds: JSON.parse(jobs ?? '[]') as string[], customIds: JSON.parse(custom ?? '[]') as string[] };
    });
  }

  async batches(owner: string): Promise<JournalRecord[]> {
    return this.reach(async () => {
      return this.present('batches:' + owner, (id) => this.batch(id));
    });
  }

  async patchBatch(id: string, fields: JournalRecord, ifStatus?: string[]): Promise<boolean> {
    return this.reach(
      async () =>
        (await this.client.batchPatchIf(
          this.prefix + 'batch:' + id,
          (ifStatus ?? []).join(','),
          ...Object.entries(fields).flat(),
        )) === 1,
    );
  }

  async countEnded(id: string, jobId: string, status: 'succeeded' | 'failed' | 'cancelled'): Promise<Counts> {
    return this.reach(async () => {
      const key = this.prefix + 'batch:' + id;
      const [total, completed, failed, cancelled] = await this.client.batchCountEnded(
        key,
        key + ':counted',
        jobId,
        status,
        COUNTED[status],
      );
      return {
        total: Number(total ?? 0),
        completed: Number(completed ?? 0),
        failed: Number(failed ?? 0),
        cancelled: Number(cancelled ?? 0),
      };
    });
  }

  /** The records an index names, the index tidied of those Redis has dropped (their TTL came). */
  private async present(index: string, read: (id: string) => Promise<JournalRecord | undefined>) {
    const ids = await this.client.zrange(this.prefix + index, '0', '-1');
    const out = await Promise.all(ids.map(read));
    const gone = ids.filter((_, i) => !out[i]);
    if (gone.length) await this.client.zrem(this.prefix + index, ...gone);
    return out.filter((r): r is JournalRecord => r !== undefined);
  }

  async openBatches(): Promise<JournalRecord[]> {
    return this.reach(async () => {
      const all = await this.present('open', (id) => this.batch(id));
      const ended = all.filter((b) => !OPEN.has(b.status!)).map((b) => b.id!);
      if (ended.length) await this.client.zrem(this.prefix + 'open', ...ended);
      return all.filter((b) => OPEN.has(b.status!));
    });
  }

  async dropBatchAt(id: string, ms: number): Promise<void> {
    const key = this.prefix + 'batch:' + id;
    await this.reach(() =>
      this.client
        .multi()
        .pexpireat(key, ms)
        .pexpireat(key + ':lines', ms)
        .pexpireat(key + ':counted', ms)
        .zrem(this.prefix + 'open', id)
        .exec(),
    );
  }

  async dropExpired(): Promise<void> {
    // Redis drops them itself (each key's expiry); the indexes are tidied as they are read.
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
