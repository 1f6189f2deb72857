/**
 * Where files (of the Files API) and batches are kept: one interface, two stores beside the job
 * stores. Embedded: file contents as files under `<stateDir>/files/` (written to a temporary name,
 * fsynced, renamed: a full disk leaves nothing), their metadata and the batches in a journal.
 * Redis: hashes and sorted sets, so every instance sees every batch and file.
 *
 * A batch's lines are its jobs (src/jobs, grouped by the batch id). Each line's end is counted once,
 * whichever instance tells it and however often (a restart tells ended jobs again): the store keeps
 * which jobs it counted.
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { GlimpseError, isGlimpseError } from '../core/index.js';
import { Journal, storageError, type JournalRecord } from './journal.js';

export interface Counts {
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
}

export interface BatchStore {
  putFile(meta: JournalRecord, content: Buffer): Promise<void>;
  file(id: string): Promise<JournalRecord | undefined>;
  fileContent(id: string): Promise<Buffer | undefined>;
  /** Every file of one owner (API key name, '' without keys). */
  files(owner: string): Promise<JournalRecord[]>;
  deleteFile(id: string): Promise<void>;
  putBatch(batch: JournalRecord, jobIds: string[], customIds: string[]): Promise<void>;
  batch(id: string): Promise<JournalRecord | undefined>;
  batchLines(id: string): Promise<{ jobIds: string[]; customIds: string[] }>;
  batches(owner: string): Promise<JournalRecord[]>;
  /** Set fields; with `ifStatus`, only while the batch's status is one of those (false otherwise). */
  patchBatch(id: string, fields: JournalRecord, ifStatus?: string[]): Promise<boolean>;
  /** Count a line's end once; the counts after it. */
  countEnded(id: string, jobId: string, status: 'succeeded' | 'failed' | 'cancelled'): Promise<Counts>;
  close(): Promise<void>;
}

const COUNTED = { succeeded: 'completed', failed: 'failed', cancelled: 'cancelled' } as const;

export function countsOf(h: JournalRecord): Counts {
  return {
    total: Number(h.total ?? 0),
    completed: Number(h.completed ?? 0),
    failed: Number(h.failed ?? 0),
    cancelled: Number(h.cancelled ?? 0),
  };
}

export class EmbeddedBatchStore implements BatchStore {
  private journal: Promise<Journal> | undefined;
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'files');
  }

  private store(): Promise<Journal> {
    this.journal ??= Journal.open(join(this.dir, 'index.jsonl')).catch((err: unknown) => {
      this.journal = undefined;
      throw new GlimpseError(
        'jobs_unavailable',
        `The file and batch store in ${this.dir} cannot be opened: ${(err as Error).message}`,
        { cause: err },
      );
    });
    return this.journal;
  }

  async putFile(meta: JournalRecord, content: Buffer): Promise<void> {
    const journal = await this.store();
    const path = join(this.dir, meta.id!);
    const tmp = path + '.tmp';
    try {
      await mkdir(this.dir, { recursive: true });
      const fh = await open(tmp, 'w');
      try {
        for (let done = 0; done < content.length;)
          done += (await fh.write(content, done, content.length - done, done)).bytesWritten;
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw storageError(err, 'uploaded files');
    }
    // The content first, then the record that makes it visible: a failure leaves no half file.
    await journal.put([['file:' + meta.id, meta]]).catch(async (err: unknown) => {
      await unlink(path).catch(() => {});
      throw err;
    });
  }

  async file(id: string): Promise<JournalRecord | undefined> {
    return (await this.store()).get('file:' + id);
  }

  async fileContent(id: string): Promise<Buffer | undefined> {
    if (!(await this.file(id))) return undefined;
    return readFile(join(this.dir, id));
  }

  async files(owner: string): Promise<JournalRecord[]> {
    return [...(await this.store()).values()]
      .filter(([k, v]) => k.startsWith('file:') && v.key === owner)
      .map(([, v]) => v);
  }

  async deleteFile(id: string): Promise<void> {
    await (await this.store()).remove(['file:' + id]);
    await unlink(join(this.dir, id)).catch(() => {});
  }

  async putBatch(batch: JournalRecord, jobIds: string[], customIds: string[]): Promise<void> {
    await (
      await this.store()
    ).put([
      ['lines:' + batch.id, { jobs: JSON.stringify(jobIds), custom: JSON.stringify(customIds) }],
      ['batch:' + batch.id, batch],
    ]);
  }

  async batch(id: string): Promise<JournalRecord | undefined> {
    return (await this.store()).get('batch:' + id);
  }

  async batchLines(id: string): Promise<{ jobIds: string[]; customIds: string[] }> {
    const h = (await this.store()).get('lines:' + id);
    return { jobIds: JSON.parse(h?.jobs ?? '[]') as string[], customIds: JSON.parse(h?.custom ?? '[]') as string[] };
  }

  async batches(owner: string): Promise<JournalRecord[]> {
    return [...(await this.store()).values()]
      .filter(([k, v]) => k.startsWith('batch:') && v.key === owner)
      .map(([, v]) => v);
  }

  async patchBatch(id: string, fields: JournalRecord, ifStatus?: string[]): Promise<boolean> {
    const journal = await this.store();
    const h = journal.get('batch:' + id);
    if (!h || (ifStatus && !ifStatus.includes(h.status!))) return false;
    await journal.patch('batch:' + id, fields);
    return true;
  }

  async countEnded(id: string, jobId: string, status: 'succeeded' | 'failed' | 'cancelled'): Promise<Counts> {
    const journal = await this.store();
    const h = journal.get('batch:' + id);
    if (!h) return { total: 0, completed: 0, failed: 0, cancelled: 0 };
    const mark = `ended:${id}:${jobId}`;
    if (journal.get(mark)) return countsOf(h);
    // Checked and changed with no wait between: one process, so no other teller can interleave.
    const field = COUNTED[status];
    const next = { ...h, [field]: String(Number(h[field] ?? 0) + 1) };
    await journal.put([
      [mark, { s: status }],
      ['batch:' + id, next],
    ]);
    return countsOf(next);
  }

  async close(): Promise<void> {
    const journal = await this.journal?.catch(() => undefined);
    await journal?.close();
  }
}

// KEYS[1] batch hash, KEYS[2] hash of counted jobs. ARGV: job id, status, counter field.
const COUNT_ENDED = `
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
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
    await this.reach(() =>
      this.client
        .multi()
        .set(this.prefix + 'content:' + meta.id, content)
        .hset(this.prefix + 'file:' + meta.id, meta)
        .zadd(this.prefix + 'files:' + meta.key, meta.created_at!, meta.id!)
        .exec(),
    );
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
      const ids = await this.client.zrange(this.prefix + 'files:' + owner, '0', '-1');
      const out = await Promise.all(ids.map((id) => this.file(id)));
      return out.filter((f): f is JournalRecord => f !== undefined);
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
      const ids = await this.client.zrange(this.prefix + 'batches:' + owner, '0', '-1');
      const out = await Promise.all(ids.map((id) => this.batch(id)));
      return out.filter((b): b is JournalRecord => b !== undefined);
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

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
