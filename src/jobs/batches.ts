/**
 * OpenAI's Files and Batch APIs over the job store. A batch's input file is JSONL of requests
 * (`custom_id`, `method: POST`, `url`, `body`); creating the batch queues each line as a job of the
 * group `batch_…` (all or none), so lines run as background work through the normal pipeline, on
 * any instance sharing the store. Each line's end is counted once (./batch-store.ts); the teller
 * that counts the last one finalizes: it writes the output file (one line per answered request) and
 * the error file (one per failed request) in OpenAI's line format, and sets the batch's end status.
 *
 * Time, checked by whichever instance notices first (a sweep every instance runs, and a check as a
 * worker picks up a line): a batch still running when its completion window ends is expired (its
 * unrun lines never run and go to the error file as `batch_expired`); a batch left in `finalizing`
 * past batches.finalizeGraceSeconds (its finalizer died) is finalized again. Moving a batch between
 * statuses is a compare-and-set in the store, so one instance does each; finalizing twice is
 * harmless anyway: the output and error files' ids follow from the batch's, so a second writing
 * replaces the first. Files and ended batches are dropped after their TTLs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GlimpseError } from '../core/index.js';
import type { BatchStore } from './batch-store.js';
import {
  BATCH_ENDPOINTS,
  batchView,
  fileView,
  outputLine,
  parseBatchJsonl,
  windowSeconds,
  type BatchLimits,
  type BatchObject,
} from './batch-format.js';
import type { JournalRecord } from './journal.js';
import type { GroupItem, JobKind, JobQueue, JobStatus } from './types.js';

export { BATCH_ENDPOINTS, batchView, fileView, parseBatchJsonl, type BatchObject } from './batch-format.js';

export interface BatchSettings extends BatchLimits {
  maxCompletionWindowSeconds: number;
  fileTtlSeconds: number;
  batchTtlSeconds: number;
  finalizeGraceSeconds: number;
  sweepSeconds: number;
}

const seconds = (ms: number) => String(Math.floor(ms / 1000));
/** When a record's time field (OpenAI's seconds, or our own ms beside it) falls, in ms. */
const msOf = (h: JournalRecord, field: string) => Number(h[field + '_ms'] ?? Number(h[field + '_at'] ?? 0) * 1000);

export class Batches {
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly store: BatchStore,
    private readonly jobs: JobQueue,
    private readonly settings: BatchSettings,
    private readonly log: { warn(obj: object, msg: string): void },
    /** The clock (ms); tests may pass their own. */
    private readonly clock: () => number = Date.now,
  ) {
    jobs.onGroupJobEnded(async ({ id, group, status }) => {
      if (group.startsWith('batch_')) await this.lineEnded(group, id, status);
    });
    jobs.gateGroupJobs(async (group) => !group.startsWith('batch_') || this.lineMayStart(group));
  }

  /** Sweep now (a restart finds what was left), then every batches.sweepSeconds. */
  start(): void {
    this.sweep(true);
    this.sweeper = setInterval(() => this.sweep(false), this.settings.sweepSeconds * 1000);
    this.sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.sweeping;
  }

  private sweep(first: boolean): void {
    if (this.sweeping) return;
    this.sweeping = this.sweepOnce(first)
      .catch((err: Error) => this.log.warn({ err: err.message }, 'batch sweep failed; tried again at the next'))
      .finally(() => (this.sweeping = undefined));
  }

  private async sweepOnce(first: boolean): Promise<void> {
    const t = this.clock();
    await this.store.dropExpired(t);
    for (const b of await this.store.openBatches()) {
      if (b.status === 'in_progress' && msOf(b, 'expires') <= t) await this.expire(b.id!);
      else if (b.status === 'finalizing') {
        // The store is this process's alone (embedded) and just opened: no finalizer is alive.
        const stale = msOf(b, 'finalizing') + this.settings.finalizeGraceSeconds * 1000 <= t;
        if ((first && this.store.exclusive) || stale) await this.refinalize(b.id!);
      }
    }
  }

  async createFile(
    owner: string,
    filename: string,
    purpose: string,
    content: Buffer,
  ): Promise<ReturnType<typeof fileView>> {
    if (purpose !== 'batch')
      throw new GlimpseError(
        'invalid_request',
        `purpose must be "batch" (got ${JSON.stringify(purpose)}); glimpse keeps files for batches only.`,
        { param: 'purpose' },
      );
    parseBatchJsonl(content, this.settings);
    return this.keepFile(owner, filename, purpose, content);
  }

  /** Keep a file until fileTtlSeconds from now; `id` given (a batch's output) replaces one of that id. */
  private async keepFile(
    owner: string,
    filename: string,
    purpose: string,
    content: Buffer,
    id = 'file-' + randomBytes(12).toString('hex'),
  ): Promise<ReturnType<typeof fileView>> {
    const t = this.clock();
    const meta = {
      id,
      key: owner,
      bytes: String(content.length),
      created_at: seconds(t),
      filename,
      purpose,
      drop_ms: String(t + this.settings.fileTtlSeconds * 1000),
    };
    await this.store.putFile(meta, content);
    return fileView(meta);
  }

  async file(owner: string, id: string): Promise<JournalRecord> {
    const h = /^file-[0-9a-f]{24}$/.test(id) ? await this.store.file(id) : undefined;
    if (!h || h.key !== owner) throw new GlimpseError('not_found', `No file '${id}' here.`, { param: 'file_id' });
    return h;
  }

  async files(owner: string): Promise<Array<ReturnType<typeof fileView>>> {
    return (await this.store.files(owner)).map(fileView).sort((a, b) => b.created_at - a.created_at);
  }

  async fileContent(owner: string, id: string): Promise<Buffer> {
    await this.file(owner, id);
    const content = await this.store.fileContent(id);
    if (!content) throw new GlimpseError('not_found', `No file '${id}' here.`, { param: 'file_id' });
    return content;
  }

  async deleteFile(owner: string, id: string): Promise<{ id: string; object: 'file'; deleted: true }> {
    await this.file(owner, id);
    await this.store.deleteFile(id);
    return { id, object: 'file', deleted: true };
  }

  /**
   * Create a batch: every line checked against the endpoint and by `check` (the endpoint's own
   * validation, which returns the model), then all lines queued at once or none.
   */
  async create(
    owner: { keyId?: string },
    input: { input_file_id: string; endpoint: string; completion_window: string; metadata?: Record<string, string> },
    check: (endpoint: string, body: Record<string, unknown>) => Promise<{ kind: JobKind; model: string }>,
  ): Promise<BatchObject> {
    const key = owner.keyId ?? '';
    if (!(BATCH_ENDPOINTS as readonly string[]).includes(input.endpoint))
      throw new GlimpseError('invalid_request', `endpoint must be one of ${BATCH_ENDPOINTS.join(', ')}.`, {
        param: 'endpoint',
      });
    const window = windowSeconds(input.completion_window, this.settings.maxCompletionWindowSeconds);
    const lines = parseBatchJsonl(await this.fileContent(key, input.input_file_id), this.settings);
    if (lines.length > this.settings.maxQueued)
      throw new GlimpseError(
        'batch_too_large',
        `The batch has ${lines.length} requests; at most jobs.maxQueued (${this.settings.maxQueued}) can wait at once. Split the file.`,
        { param: 'input_file_id' },
      );
    const items: GroupItem[] = [];
    for (const [i, line] of lines.entries()) {
      if (line.url !== input.endpoint)
        throw new GlimpseError(
          'invalid_file',
          `Line ${i + 1}: url ${line.url} is not this batch's endpoint ${input.endpoint}.`,
          { param: 'input_file_id' },
        );
      try {
        items.push({ body: { ...line.body, stream: false }, ...(await check(input.endpoint, line.body)) });
      } catch (err) {
        if (err instanceof GlimpseError)
          throw new GlimpseError(err.code, `Line ${i + 1} (custom_id ${line.custom_id}): ${err.message}`, {
            param: 'input_file_id',
          });
        throw err;
      }
    }
    const id = 'batch_' + randomBytes(12).toString('hex');
    const t = this.clock();
    const jobIds = await this.jobs.submitGroup(id, items, owner);
    const batch: JournalRecord = {
      id,
      key,
      endpoint: input.endpoint,
      input_file_id: input.input_file_id,
      completion_window: input.completion_window,
      status: 'in_progress',
      created_at: seconds(t),
      in_progress_at: seconds(t),
      expires_at: seconds(t + window * 1000),
      expires_ms: String(t + window * 1000),
      total: String(lines.length),
      completed: '0',
      failed: '0',
      cancelled: '0',
      ...(input.metadata ? { metadata: JSON.stringify(input.metadata) } : {}),
    };
    try {
      await this.store.putBatch(
        batch,
        jobIds,
        lines.map((l) => l.custom_id),
      );
    } catch (err) {
      await this.jobs.cancelMany(jobIds).catch(() => {}); // queued lines of a batch never recorded do not run
      throw err;
    }
    return batchView(batch);
  }

  async get(owner: string, id: string): Promise<BatchObject> {
    return batchView(await this.owned(owner, id));
  }

  private async owned(owner: string, id: string): Promise<JournalRecord> {
    const h = /^batch_[0-9a-f]{24}$/.test(id) ? await this.store.batch(id) : undefined;
    if (!h || h.key !== owner) throw new GlimpseError('not_found', `No batch '${id}' here.`, { param: 'batch_id' });
    return h;
  }

  /** Newest first, OpenAI's cursor pagination (`after` a batch id, `limit`). */
  async list(owner: string, after: string | undefined, limit: number) {
    const all = (await this.store.batches(owner))
      .map(batchView)
      .sort((a, b) => b.created_at - a.created_at || b.id.localeCompare(a.id));
    const from = after ? all.findIndex((b) => b.id === after) + 1 : 0;
    const data = all.slice(from, from + limit);
    return {
      object: 'list' as const,
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: from + limit < all.length,
    };
  }

  /** Cancel: queued lines never run, running ones stop; the batch ends `cancelled` with what was answered. */
  async cancel(owner: string, id: string): Promise<BatchObject> {
    await this.owned(owner, id);
    if (
      await this.store.patchBatch(id, { status: 'cancelling', cancelling_at: seconds(this.clock()) }, [
        'validating',
        'in_progress',
      ])
    ) {
      await this.jobs.cancelMany((await this.store.batchLines(id)).jobIds);
    }
    return batchView((await this.store.batch(id))!);
  }

  /** Asked as a worker picks up a line: not once its batch's window has ended (then the batch expires). */
  private async lineMayStart(id: string): Promise<boolean> {
    try {
      const b = await this.store.batch(id);
      if (!b || b.expired_at) return !b;
      if (b.status === 'in_progress' && msOf(b, 'expires') <= this.clock()) {
        await this.expire(id);
        return false;
      }
    } catch (err) {
      // The store unreachable: the line runs (its answer is kept), and the sweep expires the batch later.
      this.log.warn({ batch: id, err: (err as Error).message }, 'batch window not checked');
    }
    return true;
  }

  /** The window ended: the one instance that moves it to finalizing stops its lines and writes its files. */
  private async expire(id: string): Promise<void> {
    const t = this.clock();
    const moved = await this.store.patchBatch(
      id,
      { status: 'finalizing', finalizing_at: seconds(t), finalizing_ms: String(t), expired_at: seconds(t) },
      ['in_progress'],
    );
    if (!moved) return;
    await this.jobs.cancelMany((await this.store.batchLines(id)).jobIds);
    await this.finalizeLogged(id);
  }

  /** A batch left in finalizing: taken over (the time moved on, so others wait another grace period). */
  private async refinalize(id: string): Promise<void> {
    const t = this.clock();
    if (await this.store.patchBatch(id, { finalizing_ms: String(t) }, ['finalizing'])) await this.finalizeLogged(id);
  }

  private async lineEnded(id: string, jobId: string, status: JobStatus): Promise<void> {
    const counts = await this.store.countEnded(id, jobId, status as 'succeeded' | 'failed' | 'cancelled');
    if (counts.completed + counts.failed + counts.cancelled < counts.total) return;
    // Whoever moves it to finalizing writes the files; another teller of the last line does not.
    const t = this.clock();
    const fields = { status: 'finalizing', finalizing_at: seconds(t), finalizing_ms: String(t) };
    if (!(await this.store.patchBatch(id, fields, ['in_progress', 'cancelling']))) return;
    await this.finalizeLogged(id);
  }

  private async finalizeLogged(id: string): Promise<void> {
    await this.finalize(id).catch((err: Error) =>
      this.log.warn({ batch: id, err: err.message }, 'batch not finalized; tried again after the grace period'),
    );
  }

  private async finalize(id: string): Promise<void> {
    const batch = (await this.store.batch(id))!;
    const { jobIds, customIds } = await this.store.batchLines(id);
    const jobs = await this.jobs.peek(jobIds);
    const expired = Boolean(batch.expired_at);
    const out: string[] = [];
    const errors: string[] = [];
    jobs.forEach((job, i) => {
      const line = outputLine(jobIds[i]!, customIds[i]!, job, expired);
      if (line) (line.response?.status_code === 200 ? out : errors).push(JSON.stringify(line));
    });
    const files: JournalRecord = {};
    // Ids that follow from the batch's: finalizing again (after a crash) replaces, never adds.
    const fileId = (which: string) =>
      'file-' + createHash('sha256').update(`${id}:${which}`).digest('hex').slice(0, 24);
    const write = async (which: 'output' | 'error', lines: string[]) =>
      (
        await this.keepFile(
          batch.key!,
          `${id}_${which}.jsonl`,
          'batch_output',
          Buffer.from(lines.join('\n') + '\n'),
          fileId(which),
        )
      ).id;
    if (out.length) files.output_file_id = await write('output', out);
    if (errors.length) files.error_file_id = await write('error', errors);
    const status = expired ? 'expired' : batch.cancelling_at ? 'cancelled' : 'completed';
    const t = this.clock();
    const drop = t + this.settings.batchTtlSeconds * 1000;
    const ended = await this.store.patchBatch(
      id,
      {
        ...files,
        status,
        final_completed: String(out.length),
        final_failed: String(errors.length),
        ...(status === 'expired' ? {} : { [`${status}_at`]: seconds(t) }),
        drop_ms: String(drop),
      },
      ['finalizing'],
    );
    if (ended) await this.store.dropBatchAt(id, drop);
  }
}
