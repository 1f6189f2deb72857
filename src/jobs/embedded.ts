/**
 * Async jobs without a Redis: the job store kept in `<stateDir>/jobs/journal.jsonl` (./journal.ts),
 * run by this instance's workers. The default when no --redis-url is given.
 *
 * One process owns a state directory at a time (a lock file naming its pid); another glimpse on the
 * same directory is told so by jobs_unavailable. The store opens at start when a journal is there
 * (so a restart goes on with its jobs), else on first use. On opening, a job that was running when
 * the process died (SIGKILL, power loss) is queued again and counts that start: past maxAttempts
 * starts it fails with job_failed, as with Redis. A graceful stop hands a running job back without
 * counting it. Ended jobs are kept resultTtlSeconds, then dropped.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { GlimpseError } from '../core/index.js';
import { announceJob } from './announce.js';
import { Journal, type JournalRecord } from './journal.js';
import type { WebhookTransport } from './webhook.js';
import {
  ENDED_STATUSES,
  exhausted,
  jobError,
  jobView,
  JOB_ID_RE,
  queueFull,
  type EndedListener,
  type GroupGate,
  type GroupItem,
  type JobKind,
  type JobQueue,
  type JobRunner,
  type JobSettings,
  type JobStats,
  type JobStatus,
  type JobView,
  type Log,
} from './types.js';

const SWEEP_MS = 60_000;

export class EmbeddedJobQueue implements JobQueue {
  private journal: Promise<Journal> | undefined;
  private readonly dir: string;
  /** Queued job ids in order; an id whose job was cancelled meanwhile is dropped when reached. */
  private readonly waiting: string[] = [];
  private readonly idle: Array<() => void> = [];
  private readonly active = new Map<string, AbortController>();
  private readonly stopping = new AbortController();
  private draining = false;
  private loops: Array<Promise<void>> = [];
  private readonly deliveries = new Set<Promise<void>>();
  private readonly ended = { succeeded: 0, failed: 0, cancelled: 0, handed_back: 0 };
  private readonly webhooks = { delivered: 0, failed: 0 };
  private groupListener: EndedListener | undefined;
  private groupGate: GroupGate | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    stateDir: string,
    private readonly settings: JobSettings,
    private readonly run: JobRunner,
    private readonly log: Log,
    private readonly transport: WebhookTransport = {},
  ) {
    this.dir = join(stateDir, 'jobs');
  }

  /** The journal, opened (and recovered) once; a failure to open is retried on the next use. */
  private store(): Promise<Journal> {
    this.journal ??= this.openStore().catch((err: unknown) => {
      this.journal = undefined;
      if (err instanceof GlimpseError) throw err;
      throw new GlimpseError(
        'jobs_unavailable',
        `The job store in ${this.dir} cannot be opened: ${(err as Error).message}`,
        { cause: err },
      );
    });
    return this.journal;
  }

  private async openStore(): Promise<Journal> {
    await takeLock(join(this.dir, 'lock'));
    const journal = await Journal.open(join(this.dir, 'journal.jsonl'));
    const now = Date.now();
    const queued: Array<[string, JournalRecord]> = [];
    const expired: string[] = [];
    const changed: Array<[string, JournalRecord]> = [];
    for (const [id, h] of journal.values()) {
      if (h.status === 'running') {
        // Its process died with it: queued again, the start it had counted.
        const again = { ...h, status: 'queued' };
        changed.push([id, again]);
        queued.push([id, again]);
      } else if (h.status === 'cancelling') changed.push([id, ended(h, 'cancelled', {}, now)]);
      else if (h.status === 'queued') queued.push([id, h]);
      else if (Number(h.finished_at) + this.settings.resultTtlSeconds * 1000 < now) expired.push(id);
    }
    await journal.put(changed);
    await journal.remove(expired);
    queued.sort((a, b) => Number(a[1].created_at) - Number(b[1].created_at));
    for (const [id] of queued) this.waiting.push(id);
    if (queued.length) this.log.info({ queued: queued.length, store: this.dir }, 'job store opened with jobs to run');
    // Ends that were never told (the process died between a job's end and its webhook or group).
    for (const [id, h] of journal.values()) if (ENDED_STATUSES.has(h.status as JobStatus)) this.afterEnd(journal, id);
    this.sweeper = setInterval(
      () => void this.sweep(journal),
      Math.min(SWEEP_MS, this.settings.resultTtlSeconds * 1000),
    );
    this.sweeper.unref();
    this.wakeAll();
    return journal;
  }

  private async sweep(journal: Journal): Promise<void> {
    const cutoff = Date.now() - this.settings.resultTtlSeconds * 1000;
    const gone = [...journal.values()]
      .filter(([, h]) => ENDED_STATUSES.has(h.status as JobStatus) && Number(h.finished_at) < cutoff)
      .map(([id]) => id);
    await journal
      .remove(gone)
      .catch((err: Error) => this.log.warn({ err: err.message }, 'job store: expired jobs not removed'));
  }

  async submit(body: unknown, owner: { keyId?: string; model: string }, webhook?: string): Promise<JobView> {
    const journal = await this.store();
    this.room(1);
    const id = 'job_' + randomBytes(12).toString('hex');
    const fields = {
      status: 'queued',
      created_at: String(Date.now()),
      key: owner.keyId ?? '',
      model: owner.model,
      attempts: '0',
      ...(webhook ? { webhook, webhook_status: 'pending', webhook_attempts: '0' } : {}),
    };
    await journal.put([[id, { ...fields, body: JSON.stringify(body) }]]);
    this.enqueue([id]);
    return jobView(id, fields);
  }

  async submitGroup(group: string, items: GroupItem[], owner: { keyId?: string }): Promise<string[]> {
    const journal = await this.store();
    this.room(items.length);
    const now = String(Date.now());
    const entries = items.map((item): [string, JournalRecord] => [
      'job_' + randomBytes(12).toString('hex'),
      {
        status: 'queued',
        created_at: now,
        key: owner.keyId ?? '',
        model: item.model,
        attempts: '0',
        kind: item.kind,
        group,
        body: JSON.stringify(item.body),
      },
    ]);
    // One write: all of them are kept, or (disk full) none.
    await journal.put(entries);
    const ids = entries.map(([id]) => id);
    this.enqueue(ids);
    return ids;
  }

  private room(adding: number): void {
    const waiting = this.waiting.length + this.active.size;
    if (waiting + adding > this.settings.maxQueued) throw queueFull(waiting, adding, this.settings.maxQueued);
  }

  private enqueue(ids: string[]): void {
    this.waiting.push(...ids);
    this.wakeAll();
  }

  private wakeAll(): void {
    for (const wake of this.idle.splice(0)) wake();
  }

  async get(id: string, keyId: string | undefined): Promise<JobView> {
    return jobView(id, this.owned(await this.store(), id, keyId));
  }

  /** What clients read is what a restart would keep: never a start or a result still being written. */
  private owned(journal: Journal, id: string, keyId: string | undefined): JournalRecord {
    const h = JOB_ID_RE.test(id) ? journal.durable(id) : undefined;
    if (!h || (h.key ?? '') !== (keyId ?? ''))
      throw new GlimpseError('not_found', `No job '${id}' here.`, { param: 'id' });
    return h;
  }

  async peek(ids: string[]): Promise<Array<JobView | undefined>> {
    const journal = await this.store();
    return ids.map((id) => {
      const h = journal.durable(id);
      return h ? jobView(id, h) : undefined;
    });
  }

  async cancel(id: string, keyId: string | undefined): Promise<JobView> {
    const journal = await this.store();
    this.owned(journal, id, keyId);
    await this.cancelOne(journal, id);
    return jobView(id, journal.durable(id)!);
  }

  async cancelMany(ids: string[]): Promise<void> {
    const journal = await this.store();
    for (const id of ids) await this.cancelOne(journal, id);
  }

  private async cancelOne(journal: Journal, id: string): Promise<void> {
    const h = journal.get(id);
    if (h?.status === 'queued') await journal.put([[id, ended(h, 'cancelled', {}, Date.now())]]);
    else if (h?.status === 'running') {
      await journal.patch(id, { status: 'cancelling' });
      this.active.get(id)?.abort(new GlimpseError('client_closed', 'The job was cancelled.'));
    }
  }

  onGroupJobEnded(listener: EndedListener): void {
    this.groupListener = listener;
  }

  gateGroupJobs(gate: GroupGate): void {
    this.groupGate = gate;
  }

  start(): void {
    // A journal left by an earlier run: open it now, so its jobs go on without waiting for a request.
    if (existsSync(join(this.dir, 'journal.jsonl')))
      this.store().catch((err: Error) => this.log.warn({ err: err.message }, 'job store not opened'));
    for (let i = 0; i < this.settings.workers; i++) this.loops.push(this.work());
  }

  private async work(): Promise<void> {
    while (!this.stopping.signal.aborted && !this.draining) {
      const id = this.journal ? this.waiting.shift() : undefined;
      if (id === undefined) {
        await new Promise<void>((wake) => this.idle.push(wake));
        continue;
      }
      try {
        await this.process(await this.store(), id);
      } catch (err) {
        this.log.warn(
          { job: id, err: (err as Error).message },
          'job store write failed; the job runs again when the store is reopened',
        );
      }
    }
  }

  private async process(journal: Journal, id: string): Promise<void> {
    const h = journal.get(id);
    if (h?.status !== 'queued') {
      if (h) this.afterEnd(journal, id); // cancelled while it waited
      return;
    }
    if (h.group && this.groupGate && !(await this.groupGate(h.group))) {
      // Its group said no (a batch whose window ended): it ends cancelled without running.
      await this.cancelOne(journal, id);
      return this.afterEnd(journal, id);
    }
    const attempt = Number(h.attempts) + 1;
    if (attempt > this.settings.maxAttempts) {
      await journal.put([[id, ended(h, 'failed', { error: exhausted(this.settings.maxAttempts) }, Date.now())]]);
      this.ended.failed++;
      return this.afterEnd(journal, id);
    }
    await journal.patch(id, { status: 'running', started_at: String(Date.now()), attempts: String(attempt) });
    const stop = new AbortController();
    this.active.set(id, stop);
    this.log.info({ job: id, attempt }, 'job started');
    let outcome: { status: JobStatus; fields: JournalRecord };
    try {
      const result = await this.run(
        { id, body: JSON.parse(h.body ?? 'null'), keyId: h.key || undefined, kind: (h.kind ?? 'chat') as JobKind },
        AbortSignal.any([stop.signal, this.stopping.signal]),
      );
      outcome = { status: 'succeeded', fields: { result: JSON.stringify(result) } };
    } catch (err) {
      const shuttingDown =
        this.stopping.signal.aborted || (err instanceof GlimpseError && err.code === 'shutting_down');
      if (shuttingDown && !stop.signal.aborted) {
        // This instance is stopping: back to the queue for its next start, not a failure.
        this.active.delete(id);
        await journal.patch(id, { status: 'queued', attempts: String(attempt - 1) });
        this.ended.handed_back++;
        this.log.info({ job: id }, 'job handed back to the queue (shutting down)');
        return;
      }
      const e = jobError(err);
      outcome = stop.signal.aborted
        ? { status: 'cancelled', fields: {} }
        : { status: 'failed', fields: { error: JSON.stringify({ code: e.code, message: e.message }) } };
    }
    this.active.delete(id);
    // Counted as it becomes visible to clients: once durable.
    await journal.put([[id, ended(journal.get(id) ?? h, outcome.status, outcome.fields, Date.now())]]);
    this.ended[outcome.status as 'succeeded' | 'failed' | 'cancelled']++;
    this.log.info({ job: id, status: outcome.status }, 'job ended');
    this.afterEnd(journal, id);
  }

  /** Tell the job's group and deliver its webhook, beside the workers (a slow receiver holds no worker). */
  private afterEnd(journal: Journal, id: string): void {
    const h = journal.get(id);
    if (!h) return;
    const told = (async () => {
      if (h.group && this.groupListener)
        await this.groupListener({ id, group: h.group, status: h.status as JobStatus });
      const done = await announceJob(id, h, this.settings, this.transport, this.stopping.signal, this.log);
      if (done) {
        await journal.patch(id, done.fields);
        this.webhooks[done.delivered ? 'delivered' : 'failed']++;
      }
    })()
      .catch((err: Error) => {
        if (!this.stopping.signal.aborted)
          this.log.warn({ job: id, err: err.message }, 'job end not told; told again when the store is reopened');
      })
      .finally(() => this.deliveries.delete(told));
    this.deliveries.add(told);
  }

  async backlog(): Promise<number> {
    return this.waiting.length + this.active.size;
  }

  stats(): JobStats {
    return { running: this.active.size, ended: { ...this.ended }, webhooks: { ...this.webhooks } };
  }

  drain(): void {
    this.draining = true;
    this.wakeAll();
  }

  async close(): Promise<void> {
    this.stopping.abort(new GlimpseError('shutting_down', 'The server is shutting down.'));
    this.wakeAll();
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.deliveries]);
    clearInterval(this.sweeper);
    const journal = await this.journal?.catch(() => undefined);
    if (journal) {
      await journal.close();
      await unlink(join(this.dir, 'lock')).catch(() => {});
    }
  }
}

/** The record of a job that ended: its outcome, its end time, and no body (images are not kept). */
function ended(h: JournalRecord, status: JobStatus, fields: JournalRecord, now: number): JournalRecord {
  const { body: _body, ...rest } = h;
  return { ...rest, ...fields, status, finished_at: String(now) };
}

/** Hold the state directory for this process; another live process holding it is refused. */
async function takeLock(path: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number(await readFile(path, 'utf8').catch(() => ''));
    if (pid && pid !== process.pid && alive(pid)) {
      throw new GlimpseError(
        'jobs_unavailable',
        `The job store in ${join(path, '..')} is in use by process ${pid}; give each instance its own --state-dir, or share jobs through --redis-url.`,
      );
    }
    await unlink(path).catch(() => {}); // left by a process that is gone
  }
  throw new GlimpseError('jobs_unavailable', `The job store lock ${path} could not be taken.`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
