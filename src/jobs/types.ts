/**
 * What every job store shares: the job as clients see it, the settings, the runner, and the one
 * interface both stores (embedded on local disk, Redis Streams) implement.
 *
 * Both keep a job as a flat record of strings (a Redis hash's shape), so one `jobView` turns either
 * into what the API answers and the stores differ only in how they keep and hand out records.
 */
import { GlimpseError } from '../core/index.js';
import type { WebhookSettings } from './webhook.js';

export type JobStatus = 'queued' | 'running' | 'cancelling' | 'succeeded' | 'failed' | 'cancelled';
export const ENDED_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(['succeeded', 'failed', 'cancelled']);

/** Which request shape a job's body is: a Chat Completions body (/v1/jobs, batches) or a Responses one. */
export type JobKind = 'chat' | 'responses';

export interface JobView {
  id: string;
  object: 'job';
  status: JobStatus;
  model: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  attempts: number;
  /** The chat.completion object, once succeeded. */
  result?: unknown;
  /** Why it failed, in glimpse's error shape. */
  error?: { code: string; message: string };
  /** Where its end is announced, and how that went. */
  webhook?: { url: string; status: 'pending' | 'delivered' | 'failed'; attempts: number; error?: string };
}

export interface JobSettings {
  /** Job workers in this instance (0: this instance only accepts jobs). */
  workers: number;
  /** Jobs waiting or running across all instances before submissions get 429. */
  maxQueued: number;
  resultTtlSeconds: number;
  claimIdleSeconds: number;
  maxAttempts: number;
  webhookSecret?: string;
  webhookAllowPrivateNetworks: boolean;
  webhookTimeoutMs: number;
  webhookMaxAttempts: number;
  webhookBackoffMs: number;
}

export function webhookSettings(s: JobSettings): WebhookSettings {
  return {
    secret: s.webhookSecret,
    allowPrivateNetworks: s.webhookAllowPrivateNetworks,
    timeoutMs: s.webhookTimeoutMs,
    maxAttempts: s.webhookMaxAttempts,
    backoffMs: s.webhookBackoffMs,
  };
}

/** Runs one job's body to its result object; throws a GlimpseError when it fails. */
export type JobRunner = (
  job: { id: string; body: unknown; keyId?: string; kind: JobKind },
  signal: AbortSignal,
) => Promise<unknown>;

/** One job of a group submitted together (a batch's lines): its body, shape, and a tag for the listener. */
export interface GroupItem {
  body: unknown;
  kind: JobKind;
  model: string;
}

/** Asked as a worker picks up a job of a group: false and the job is cancelled, never run. */
export type GroupGate = (group: string) => Promise<boolean>;

/** Told once (per store, at least once across instances) that a job of a group has ended. */
export type EndedListener = (job: { id: string; group: string; status: JobStatus }) => Promise<void>;

export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface JobStats {
  running: number;
  ended: { succeeded: number; failed: number; cancelled: number; handed_back: number };
  webhooks: { delivered: number; failed: number };
}

/** The job store: both implementations answer the /v1/jobs API and run jobs the same way. */
export interface JobQueue {
  /** Queue a job; `body` must already be validated (it runs later, perhaps elsewhere). */
  submit(body: unknown, owner: { keyId?: string; model: string }, webhook?: string): Promise<JobView>;
  /**
   * Queue many jobs at once, all or none, tagged with `group` (a batch's id). Refused with
   * queue_full when they do not fit under maxQueued. Returns their ids in the items' order.
   */
  submitGroup(group: string, items: GroupItem[], owner: { keyId?: string }): Promise<string[]>;
  /** The job as its owner sees it. Another key's job, or none, is 404: ids do not leak across keys. */
  get(id: string, keyId: string | undefined): Promise<JobView>;
  /** Jobs by id with no owner check (for a group's owner, already checked); undefined once expired. */
  peek(ids: string[]): Promise<Array<JobView | undefined>>;
  /** Cancel: a queued job never runs; a running one is stopped by its worker within a second. */
  cancel(id: string, keyId: string | undefined): Promise<JobView>;
  /** Cancel jobs by id with no owner check; ended ones are left as they are. */
  cancelMany(ids: string[]): Promise<void>;
  /** Called after a job of a group ended (set before start). */
  onGroupJobEnded(listener: EndedListener): void;
  /** Asked before a job of a group starts (set before start); it never throws. */
  gateGroupJobs(gate: GroupGate): void;
  /** Start this instance's workers. */
  start(): void;
  /** Jobs waiting or running (across all instances sharing the store). */
  backlog(): Promise<number>;
  /** What this instance's workers did, for metrics. */
  stats(): JobStats;
  /** Shutdown begins: take no new jobs; running ones go on (the server's grace period bounds them). */
  drain(): void;
  /** Stop the workers (a running job goes back to the queue) and close the store. */
  close(): Promise<void>;
}

export function newJobId(random: string): string {
  return 'job_' + random;
}
export const JOB_ID_RE = /^job_[0-9a-f]{24}$/;

export function queueFull(waiting: number, adding: number, max: number): GlimpseError {
  const what = adding === 1 ? 'Retry later.' : `${adding} more do not fit; retry later or split the work.`;
  return new GlimpseError(
    'queue_full',
    `${waiting} jobs are waiting or running; the limit (jobs.maxQueued) is ${max}. ${what}`,
    { retryAfterSeconds: 30 },
  );
}

/** The job's record (a flat map of strings) as its owner sees it. */
export function jobView(id: string, h: Record<string, string>): JobView {
  // Stored in ms; shown in seconds, as OpenAI's `created` fields are.
  const seconds = (ms: string | undefined) => (ms ? Math.floor(Number(ms) / 1000) : null);
  const out: JobView = {
    id,
    object: 'job',
    status: h.status as JobStatus,
    model: h.model ?? '',
    created_at: seconds(h.created_at) ?? 0,
    started_at: seconds(h.started_at),
    finished_at: seconds(h.finished_at),
    attempts: Number(h.attempts ?? 0),
  };
  if (h.result) out.result = JSON.parse(h.result);
  if (h.error) out.error = JSON.parse(h.error);
  if (h.webhook) {
    out.webhook = {
      url: h.webhook,
      status: (h.webhook_status ?? 'pending') as NonNullable<JobView['webhook']>['status'],
      attempts: Number(h.webhook_attempts ?? 0),
    };
    if (h.webhook_error) out.webhook.error = h.webhook_error;
  }
  return out;
}

/** The error a failed job records: the runner's GlimpseError, anything else as internal_error. */
export function jobError(err: unknown): GlimpseError {
  return err instanceof GlimpseError ? err : new GlimpseError('internal_error', 'The job failed.', { cause: err });
}

export function exhausted(maxAttempts: number): string {
  return JSON.stringify({
    code: 'job_failed',
    message: `The job was started ${maxAttempts} times and its worker stopped each time.`,
  });
}
