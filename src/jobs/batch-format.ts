/**
 * The shapes of OpenAI's Files and Batch APIs: a batch input file checked line by line, the file
 * and batch objects as clients see them (from the stores' flat records), the completion window,
 * and the lines of a batch's output and error files.
 */
import { ERROR_CODES, GlimpseError } from '../core/index.js';
import { countsOf } from './batch-store.js';
import type { JournalRecord } from './journal.js';
import { errorBody } from '../protocols/openai-chat/encode.js';
import type { JobView } from './types.js';

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
    expires_at: h.drop_ms ? Math.floor(Number(h.drop_ms) / 1000) : null,
    status_details: null,
  };
}

const at = (h: JournalRecord, k: string) => (h[k] ? Number(h[k]) : null);

export function batchView(h: JournalRecord) {
  // Once finalized, the counts are those of the files written (a line that ended after the files
  // were written, say one answered as the window closed, is in neither file, so it is not counted).
  const c = h.final_completed ? { completed: Number(h.final_completed), failed: Number(h.final_failed) } : countsOf(h);
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
    expired_at: at(h, 'expired_at'),
    cancelling_at: at(h, 'cancelling_at'),
    cancelled_at: at(h, 'cancelled_at'),
    request_counts: { total: Number(h.total ?? 0), completed: c.completed, failed: c.failed },
    metadata: h.metadata ? (JSON.parse(h.metadata) as Record<string, string>) : null,
  };
}
export type BatchObject = ReturnType<typeof batchView>;

/**
 * A completion window in seconds: OpenAI's only value is "24h"; glimpse takes any whole number of
 * hours, minutes or seconds ("24h", "90m", "2s") up to batches.maxCompletionWindowSeconds.
 */
export function windowSeconds(window: string, maxSeconds: number): number {
  const m = /^([1-9][0-9]{0,6})([hms])$/.exec(window);
  const seconds = m ? Number(m[1]) * { h: 3600, m: 60, s: 1 }[m[2] as 'h' | 'm' | 's'] : undefined;
  if (seconds === undefined || seconds > maxSeconds)
    throw new GlimpseError(
      'invalid_request',
      `completion_window must be a duration like "24h" of at most ${maxSeconds} seconds (batches.maxCompletionWindowSeconds); got ${JSON.stringify(window)}.`,
      { param: 'completion_window' },
    );
  return seconds;
}

/**
 * A line of the output or error file, in OpenAI's format. A line that never ran has none when its
 * batch was cancelled, and a `batch_expired` error line when its batch's window ended first.
 */
export function outputLine(jobId: string, customId: string, job: JobView | undefined, expired: boolean) {
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
  if (expired)
    return {
      id,
      custom_id: customId,
      response: null,
      error: {
        code: 'batch_expired',
        message: 'This request could not be executed before the completion window expired.',
      },
    };
  if (!job)
    return {
      id,
      custom_id: customId,
      response: null,
      error: { code: 'result_expired', message: 'The answer to this request expired before the batch ended.' },
    };
  return undefined;
}
