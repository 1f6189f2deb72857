/**
 * A durable map of flat records (id → fields) kept in memory and in one append-only file on local
 * disk: each change is a JSON line, written and fsynced before the promise that made it settles.
 *
 * Why a journal and not SQLite: the store's work is appends (submit, start, finish) and reads by id
 * of a set that fits in memory (bounded by jobs.maxQueued plus results kept resultTtlSeconds). The
 * maintained SQLite bindings are native: better-sqlite3 fetches its prebuilt binary from outside the
 * npm registry and otherwise compiles SQLite with a C toolchain (minutes, and a compiler on every
 * machine), and Node 20 has no node:sqlite. A journal needs neither, and its crash story is short:
 * - Writes are grouped: every change made while one write+fsync is in flight goes in the next one.
 * - A write that fails (disk full) is cut back off the file and its changes are undone in memory,
 *   so the caller's error means nothing of it was kept; a torn last line after a crash is ignored.
 * - The file is rewritten (to a temporary file, fsynced, renamed over) when opened and once most of
 *   it is superseded lines, so it stays proportional to the records alive.
 */
import { mkdir, open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GlimpseError } from '../core/index.js';

export type JournalRecord = Record<string, string>;

interface Change {
  line: string;
  undo: () => void;
  /** Bookkeeping of what the file holds, once this change was written (or not). */
  settle: (written: boolean) => void;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** What a failed write of the state directory tells the client: disk full is its own code. */
export function storageError(err: unknown, what: string): GlimpseError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new GlimpseError(
      'storage_full',
      `The disk holding ${what} is full; nothing of this request was kept. Free some space and retry.`,
      { cause: err },
    );
  return new GlimpseError(
    'jobs_unavailable',
    `${what} cannot be written (${code ?? (err as Error).message}); nothing of this request was kept.`,
    { cause: err },
  );
}

export class Journal {
  private readonly records = new Map<string, JournalRecord>();
  private queue: Change[] = [];
  private flushing: Promise<void> | undefined;
  private size = 0;
  /** Lines in the file that a later line superseded. */
  private stale = 0;
  /** For a record with changes not yet written: how many, and the record as the file has it. */
  private readonly unwritten = new Map<string, { changes: number; onDisk: JournalRecord | undefined }>();

  private constructor(
    private readonly path: string,
    private file: FileHandle,
  ) {}

  /** Open (creating) the journal at `path`: replay it, then rewrite it compactly. */
  static async open(path: string): Promise<Journal> {
    await mkdir(dirname(path), { recursive: true });
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    // A torn last line (a crash mid-write) is cut off before anything is appended after it.
    const whole = text.lastIndexOf('\n') + 1;
    const file = await open(path, 'a');
    if (whole < Buffer.byteLength(text)) await file.truncate(Buffer.byteLength(text.slice(0, whole)));
    const journal = new Journal(path, file);
    journal.size = Buffer.byteLength(text.slice(0, whole));
    for (const line of text.split('\n')) {
      if (!line) continue;
      let entry: { k: string; v?: JournalRecord };
      try {
        entry = JSON.parse(line) as { k: string; v?: JournalRecord };
      } catch {
        continue; // a line torn by a crash mid-write: its change was never acknowledged
      }
      if (entry.v) journal.records.set(entry.k, entry.v);
      else journal.records.delete(entry.k);
    }
    // Compacting is tidying: a full disk must not keep the store from opening.
    await journal.compact().catch(() => {});
    return journal;
  }

  /** The record with every change made so far, written or not (what the store's own logic acts on). */
  get(id: string): JournalRecord | undefined {
    return this.records.get(id);
  }

  /**
   * The record as a crash now would leave it: changes still being written are not shown. What a
   * client reads, so a state it saw (a job running, its result) is never taken back by a restart.
   */
  durable(id: string): JournalRecord | undefined {
    const w = this.unwritten.get(id);
    return w ? w.onDisk : this.records.get(id);
  }

  values(): IterableIterator<[string, JournalRecord]> {
    return this.records.entries();
  }

  /** Every record as a crash now would leave it (see durable): what a client's list shows. */
  *durableValues(): IterableIterator<[string, JournalRecord]> {
    for (const [k, v] of this.records) if (!this.unwritten.has(k)) yield [k, v];
    for (const [k, w] of this.unwritten) if (w.onDisk) yield [k, w.onDisk];
  }

  get count(): number {
    return this.records.size;
  }

  /** Set records (whole); durable when the promise settles, undone in memory if the write fails. */
  put(entries: Array<[string, JournalRecord]>): Promise<void> {
    return this.change(entries.map(([k, v]) => [k, v]));
  }

  /** Change some fields of a record that exists (a no-op for one that does not). */
  patch(id: string, fields: JournalRecord): Promise<void> {
    const now = this.records.get(id);
    return now ? this.change([[id, { ...now, ...fields }]]) : Promise.resolve();
  }

  remove(ids: string[]): Promise<void> {
    return this.change(ids.filter((id) => this.records.has(id)).map((id) => [id, undefined]));
  }

  private change(entries: Array<[string, JournalRecord | undefined]>): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const before = entries.map(([k]) => [k, this.records.get(k)] as const);
    for (const [k, v] of entries) {
      const w = this.unwritten.get(k);
      if (w) w.changes++;
      else this.unwritten.set(k, { changes: 1, onDisk: this.records.get(k) });
      if (this.records.has(k)) this.stale++;
      if (v) this.records.set(k, v);
      else this.records.delete(k);
    }
    const line = entries.map(([k, v]) => JSON.stringify(v ? { k, v } : { k })).join('\n') + '\n';
    const undo = () => {
      for (const [k, v] of before.reverse()) {
        if (v) this.records.set(k, v);
        else this.records.delete(k);
      }
    };
    const settle = (written: boolean) => {
      for (const [k, v] of entries) {
        const w = this.unwritten.get(k)!;
        if (written) w.onDisk = v;
        if (--w.changes === 0) this.unwritten.delete(k);
      }
    };
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line, undo, settle, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length) {
      const group = this.queue.splice(0);
      const bytes = Buffer.from(group.map((c) => c.line).join(''));
      try {
        // A write may take only part of the bytes (the disk filling up): go on until all are in,
        // or an error says why not.
        for (let done = 0; done < bytes.length;)
          done += (await this.file.write(bytes, done, bytes.length - done, null)).bytesWritten;
        await this.file.datasync();
        this.size += bytes.length;
        for (const c of group) c.settle(true);
        for (const c of group) c.resolve();
      } catch (err) {
        await this.file.truncate(this.size).catch(() => {});
        for (const c of group) c.settle(false);
        for (const c of group.reverse()) c.undo();
        const e = storageError(err, 'the job store');
        for (const c of group) c.reject(e);
      }
      if (this.stale > 1000 && this.stale > 2 * this.records.size) await this.compact().catch(() => {});
    }
    this.flushing = undefined;
  }

  /** Rewrite the file as the live records only: a temporary file, fsynced, renamed over the old. */
  private async compact(): Promise<void> {
    const tmp = this.path + '.tmp';
    const out = await open(tmp, 'w');
    let bytes: number;
    try {
      const chunk: string[] = [];
      for (const [k, v] of this.records) chunk.push(JSON.stringify({ k, v }) + '\n');
      const data = Buffer.from(chunk.join(''));
      for (let done = 0; done < data.length;)
        done += (await out.write(data, done, data.length - done, done)).bytesWritten;
      await out.sync();
      bytes = data.length;
    } catch (err) {
      await out.close();
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await out.close();
    await rename(tmp, this.path);
    await this.file.close();
    this.file = await open(this.path, 'a');
    this.size = bytes;
    this.stale = 0;
  }

  /** Wait for writes in flight, then close the file. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.file.close();
  }
}
