/**
 * Where files (of the Files API) and batches are kept: one interface, two stores beside the job
 * stores. Embedded: file contents as files under `<stateDir>/files/` (written to a temporary name,
 * fsynced, renamed: a full disk leaves nothing), their metadata and the batches in a journal.
 * Redis (./batch-store-redis.ts): hashes and sorted sets, so every instance sees every batch and file.
 *
 * A batch's lines are its jobs (src/jobs, grouped by the batch id). Each line's end is counted once,
 * whichever instance tells it and however often (a restart tells ended jobs again): the store keeps
 * which jobs it counted.
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { GlimpseError } from '../core/index.js';
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
  /** Batches not ended yet (in_progress, cancelling, finalizing), of every owner: what the sweep looks at. */
  openBatches(): Promise<JournalRecord[]>;
  /** An ended batch (its record, lines and counts) is dropped at `ms`. */
  dropBatchAt(id: string, ms: number): Promise<void>;
  /** Drop files and batches whose time (`drop_ms`) has come, where the store does not do it itself. */
  dropExpired(now: number): Promise<void>;
  /** Only this process uses the store (so at start nothing else can be finalizing a batch). */
  readonly exclusive: boolean;
  close(): Promise<void>;
}

export const OPEN = new Set(['validating', 'in_progress', 'cancelling', 'finalizing']);

export const COUNTED = { succeeded: 'completed', failed: 'failed', cancelled: 'cancelled' } as const;

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
  /** The job store beside it holds the state directory's lock (./embedded.ts). */
  readonly exclusive = true;
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
    return (await this.store()).durable('file:' + id);
  }

  async fileContent(id: string): Promise<Buffer | undefined> {
    if (!(await this.file(id))) return undefined;
    return readFile(join(this.dir, id));
  }

  async files(owner: string): Promise<JournalRecord[]> {
    return [...(await this.store()).durableValues()]
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
    return (await this.store()).durable('batch:' + id);
  }

  async batchLines(id: string): Promise<{ jobIds: string[]; customIds: string[] }> {
    const h = (await this.store()).durable('lines:' + id);
    return { jobIds: JSON.parse(h?.jobs ?? '[]') as string[], customIds: JSON.parse(h?.custom ?? '[]') as string[] };
  }

  async batches(owner: string): Promise<JournalRecord[]> {
    return [...(await this.store()).durableValues()]
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

  async openBatches(): Promise<JournalRecord[]> {
    return [...(await this.store()).values()]
      .filter(([k, v]) => k.startsWith('batch:') && OPEN.has(v.status!))
      .map(([, v]) => v);
  }

  async dropBatchAt(): Promise<void> {
    // Kept in the batch's record (drop_ms), read by dropExpired.
  }

  async dropExpired(now: number): Promise<void> {
    const journal = await this.store();
    const due = (v: JournalRecord) => v.drop_ms !== undefined && Number(v.drop_ms) <= now;
    const files: string[] = [];
    const batches = new Set<string>();
    for (const [k, v] of journal.values()) {
      if (k.startsWith('file:') && due(v)) files.push(v.id!);
      else if (k.startsWith('batch:') && due(v)) batches.add(v.id!);
    }
    if (!files.length && !batches.size) return;
    // A batch goes with its lines and the marks of the lines it counted.
    const keys = [...journal.values()]
      .map(([k]) => k)
      .filter((k) => {
        const [kind, id] = k.split(':');
        return (kind === 'lines' || kind === 'ended' || kind === 'batch') && batches.has(id!);
      });
    await journal.remove([...keys, ...files.map((id) => 'file:' + id)]);
    for (const id of files) await unlink(join(this.dir, id)).catch(() => {});
  }

  async close(): Promise<void> {
    const journal = await this.journal?.catch(() => undefined);
    await journal?.close();
  }
}
