/**
 * OpenAI's Files and Batch APIs over the job store. A batch's input file is JSONL of requests
 * (`custom_id`, `method: POST`, `url`, `body`); creating the batch queues each line as a job of the
 * group `batch_…` (all or none), so lines run as background work through the normal pipeline, on
 * any instance sharing the store. Each line's end is counted once (./batch-store.ts); the teller
 * that counts the last one finalizes: it writes the output file (one line per answered request) and
 * the error file (one per failed request) in OpenAI's line format, and sets the batch's end status.
 */
import { randomBytes } from 'node:crypto';
import { ERROR_CODES, GlimpseError } from '../core/index.js';
import { countsOf, type BatchStore } from './batch-store.js';
import type { JournalRecord } from './journal.js';
import { errorBody } from '../protocols/openai-chat/encode.js';
import type { GroupItem, JobKind, JobQueue, JobStatus, JobView } from './types.js';

export const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/responses'] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export interface BatchLimits {
  /** Bytes of one uploaded file. */
  maxFileBytes: number;
  /** Bytes of one JSONL line. */
  maxLineBytes: number;
  /** Jobs waiting or running before more are refused (a batch bigger than this can never run). */
  maxQueued: number;
}

/** One line of a batch input file, checked. */
export interface BatchLine {
  custom_id: string;
  url: string;
  body: Record<string, unknown>;
}

/** Check every line of an upload; the first bad one is refused naming its number (1-based). */
export function parseBatchJsonl(content: Buffer, limits: BatchLimits): BatchLine[] {
  if (content.length > limits.maxFileBytes)
    throw new GlimpseError(
      'file_too_large',
      `The file is ${content.length} bytes; the limit (batches.maxFileBytes) is ${limits.maxFileBytes}.`,
      { param: 'file' },
    );
  const text = content.toString('utf8');
  if (Buffer.byteLength(text) !== content.length || text.includes('\uFFFD'))
    throw new GlimpseError(
      'invalid_file',
      'The file is not UTF-8 text; a batch file is JSONL, one JSON request per line.',
      { param: 'file' },
    );
  const lines: BatchLine[] = [];
  const seen = new Set<string>();
  const raw = text.split('\n');
  raw.forEach((line, i) => {
    const n = i + 1;
    if (!line.trim()) return;
    const bad = (msg: string) => new GlimpseError('invalid_file', `Line ${n}: ${msg}`, { param: 'file' });
    if (Buffer.byteLength(line) > limits.maxLineBytes)
      throw bad(
        `${Buffer.byteLength(line)} bytes; the limit for one line (batches.maxLineBytes) is ${limits.maxLineBytes}.`,
      );
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw bad('not JSON. A batch file is JSONL: one JSON object per line.');
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('not a JSON object.');
    const o = v as Record<string, unknown>;
    if (typeof o.custom_id !== 'string' || !o.custom_id) throw bad('custom_id must be a non-empty string.');
    if (seen.has(o.custom_id)) throw bad(`custom_id '${o.custom_id}' appears twice; each request needs its own.`);
    seen.add(o.custom_id);
    if (o.method !== 'POST') throw bad('method must be "POST".');
    if (typeof o.url !== 'string' || !(BATCH_ENDPOINTS as readonly string[]).includes(o.url))
      throw bad(`url must be one of ${BATCH_ENDPOINTS.join(', ')} (got ${JSON.stringify(o.url)}).`);
    if (typeof o.body !== 'object' || o.body === null || Array.isArray(o.body))
      throw bad('body must be a JSON object (the request).');
    lines.push({ custom_id: o.custom_id, url: o.url, body: o.body as Record<string, unknown> });
  });
  if (lines.length === 0)
    throw new GlimpseError(
      'invalid_file',
      'The file has no requests; a batch file is JSONL, one JSON request per line.',
      { param: 'file' },
    );
  return lines;
}

export function fileView(h: JournalRecord) {
  return {
    id: h.id!,
    object: 'file' as const,
    bytes: Number(h.bytes),
    created_at: Number(h.created_at),
    filename: h.filename!,
    purpose: h.purpose!,
    status: 'processed' as const,
    expires_at: null,
    status_details: null,
  };
}

const at = (h: JournalRecord, k: string) => (h[k] ? Number(h[k]) : null);

export function batchView(h: JournalRecord) {
  const c = countsOf(h);
  return {
    id: h.id!,
    object: 'batch' as const,
    endpoint: h.endpoint!,
    errors: null,
    input_file_id: h.input_file_id!,
    completion_window: h.completion_window!,
    status: h.status!,
    output_file_id: h.output_file_id || null,
    error_file_id: h.error_file_id || null,
    created_at: Number(h.created_at),
    in_progress_at: at(h, 'in_progress_at'),
    expires_at: at(h, 'expires_at'),
    finalizing_at: at(h, 'finalizing_at'),
    completed_at: at(h, 'completed_at'),
    failed_at: null,
    expired_at: null,
    cancelling_at: at(h, 'cancelling_at'),
    cancelled_at: at(h, 'cancelled_at'),
    request_counts: { total: c.total, completed: c.completed, failed: c.failed },
    metadata: h.metadata ? (JSON.parse(h.metadata) as Record<string, string>) : null,
  };
}
export type BatchObject = ReturnType<typeof batchView>;

const now = () => String(Math.floor(Date.now() / 1000));

export class Batches {
  constructor(
    private readonly store: BatchStore,
    private readonly jobs: JobQueue,
    private readonly limits: BatchLimits,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {
    jobs.onGroupJobEnded(async ({ id, group, status }) => {
      if (group.startsWith('batch_')) await this.lineEnded(group, id, status);
    });
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
    parseBatchJsonl(content, this.limits);
    return this.keepFile(owner, filename, purpose, content);
  }

  private async keepFile(
    owner: string,
    filename: string,
    purpose: string,
    content: Buffer,
  ): Promise<ReturnType<typeof fileView>> {
    const meta = {
      id: 'file-' + randomBytes(12).toString('hex'),
      key: owner,
      bytes: String(content.length),
      created_at: now(),
      filename,
      purpose,
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
    if (input.completion_window !== '24h')
      throw new GlimpseError('invalid_request', 'completion_window must be "24h".', { param: 'completion_window' });
    const lines = parseBatchJsonl(await this.fileContent(key, input.input_file_id), this.limits);
    if (lines.length > this.limits.maxQueued)
      throw new GlimpseError(
        'batch_too_large',
        `The batch has ${lines.length} requests; at most jobs.maxQueued (${this.limits.maxQueued}) can wait at once. Split the file.`,
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
    const created = Number(now());
    const jobIds = await this.jobs.submitGroup(id, items, owner);
    const batch: JournalRecord = {
      id,
      key,
      endpoint: input.endpoint,
      input_file_id: input.input_file_id,
      completion_window: '24h',
      status: 'in_progress',
      created_at: String(created),
      in_progress_at: String(created),
      expires_at: String(created + 86_400),
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
      await this.store.patchBatch(id, { status: 'cancelling', cancelling_at: now() }, ['validating', 'in_progress'])
    ) {
      await this.jobs.cancelMany((await this.store.batchLines(id)).jobIds);
    }
    return batchView((await this.store.batch(id))!);
  }

  private async lineEnded(id: string, jobId: string, status: JobStatus): Promise<void> {
    const counts = await this.store.countEnded(id, jobId, status as 'succeeded' | 'failed' | 'cancelled');
    if (counts.completed + counts.failed + counts.cancelled < counts.total) return;
    // Whoever moves it to finalizing writes the files; another teller of the last line does not.
    if (
      !(await this.store.patchBatch(id, { status: 'finalizing', finalizing_at: now() }, ['in_progress', 'cancelling']))
    )
      return;
    await this.finalize(id).catch((err: Error) =>
      this.log.warn({ batch: id, err: err.message }, 'batch not finalized'),
    );
  }

  private async finalize(id: string): Promise<void> {
    const batch = (await this.store.batch(id))!;
    const { jobIds, customIds } = await this.store.batchLines(id);
    const jobs = await this.jobs.peek(jobIds);
    const out: string[] = [];
    const errors: string[] = [];
    jobs.forEach((job, i) => {
      const line = outputLine(jobIds[i]!, customIds[i]!, job);
      if (line) (job?.status === 'succeeded' ? out : errors).push(JSON.stringify(line));
    });
    const cancelled = Boolean(batch.cancelling_at);
    const files: JournalRecord = {};
    if (out.length)
      files.output_file_id = (
        await this.keepFile(batch.key!, `${id}_output.jsonl`, 'batch_output', Buffer.from(out.join('\n') + '\n'))
      ).id;
    if (errors.length)
      files.error_file_id = (
        await this.keepFile(batch.key!, `${id}_error.jsonl`, 'batch_output', Buffer.from(errors.join('\n') + '\n'))
      ).id;
    await this.store.patchBatch(id, {
      ...files,
      status: cancelled ? 'cancelled' : 'completed',
      [cancelled ? 'cancelled_at' : 'completed_at']: now(),
    });
  }
}

/** A line of the output or error file, in OpenAI's format; none for a line that never ran (cancelled). */
function outputLine(jobId: string, customId: string, job: JobView | undefined) {
  const id = 'batch_req_' + jobId.slice('job_'.length);
  if (job?.status === 'succeeded')
    return {
      id,
      custom_id: customId,
      response: { status_code: 200, request_id: jobId, body: job.result },
      error: null,
    };
  if (job?.status === 'failed' && job.error) {
    const e = new GlimpseError(
      job.error.code in ERROR_CODES ? (job.error.code as keyof typeof ERROR_CODES) : 'internal_error',
      job.error.message,
    );
    return {
      id,
      custom_id: customId,
      response: { status_code: e.status, request_id: jobId, body: errorBody(e) },
      error: null,
    };
  }
  if (!job)
    return {
      id,
      custom_id: customId,
      response: null,
      error: { code: 'result_expired', message: 'The answer to this request expired before the batch ended.' },
    };
  return undefined;
}
