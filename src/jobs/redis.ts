/**
 * Async jobs over Redis Streams. A client submits a chat completion, gets a job id at once (202),
 * and polls for the answer; any glimpse instance with job workers may run it.
 *
 * Redis holds everything, so jobs survive restarts and spread over instances:
 * - `<prefix>job:<id>`: a hash with the job's state (status, body, owner key, attempts, result or
 *   error, times), expiring `resultTtlSeconds` after it ends.
 * - `<prefix>stream`: a stream of job ids read by the consumer group `workers`. A worker owns an
 *   entry from XREADGROUP until it acknowledges it; while running it refreshes its claim, so an
 *   entry only goes idle when its worker died. Idle entries are taken over with XAUTOCLAIM after
 *   `claimIdleSeconds`, at most `maxAttempts` starts in all, then the job fails.
 * State changes that race (cancel against start) are single Lua scripts.
 *
 * A job may name a webhook: once it has ended (succeeded, failed, cancelled) the worker that
 * handles its stream entry POSTs a signed `job.<status>` event there (./webhook.ts) before it
 * acknowledges the entry, so a delivery cut short by a dying or stopping worker is made again by
 * the instance that takes the entry over: at least once, with one `webhook-id` per event.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { GlimpseError, isGlimpseError } from '../core/index.js';
import type { WebhookTransport } from './webhook.js';
import { announceJob } from './announce.js';
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
import { connectScripted, createGroup, GROUP, nextEntry, unavailable, type Scripted } from './redis-stream.js';

const MAX_DELIVERIES = 64;
// A job that never starts (no worker anywhere) still disappears eventually.
const UNFINISHED_TTL_SECONDS = 7 * 24 * 3600;

export class RedisJobQueue implements JobQueue {
  private readonly client: Scripted;
  private readonly blocking: Redis[] = [];
  private readonly stream: string;
  private readonly consumer = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly stopping = new AbortController();
  private draining = false;
  private running = 0;
  private readonly ended = { succeeded: 0, failed: 0, cancelled: 0, handed_back: 0 };
  private readonly webhooks = { delivered: 0, failed: 0 };
  /** Webhook deliveries in flight (each holds its job's stream entry until it settles). */
  private readonly deliveries = new Set<Promise<void>>();
  private readonly held = new Set<string>(); // entries held now: one gone idle in a stalled loop runs once
  private loops: Array<Promise<void>> = [];
  private group: Promise<void> | undefined;
  private groupListener: EndedListener | undefined;
  private groupGate: GroupGate | undefined;

  constructor(
    url: string,
    private readonly settings: JobSettings,
    private readonly run: JobRunner,
    private readonly log: Log,
    private readonly prefix = 'glimpse:jobs:',
    private readonly transport: WebhookTransport = {},
  ) {
    this.stream = prefix + 'stream';
    this.client = connectScripted(url, log);
  }

  private key(id: string): string {
    return `${this.prefix}job:${id}`;
  }

  private ensureGroup(): Promise<void> {
    return (this.group ??= createGroup(this.client, this.stream).catch((err: unknown) => {
      this.group = undefined;
      throw err;
    }));
  }

  /** Queue a job; `body` must already be validated (it runs later, elsewhere). */
  async submit(body: unknown, owner: { keyId?: string; model: string }, webhook?: string): Promise<JobView> {
    return unavailable(async () => {
      await this.room(1);
      const id = 'job_' + randomBytes(12).toString('hex');
      const fields = {
        status: 'queued',
        created_at: String(Date.now()),
        key: owner.keyId ?? '',
        model: owner.model,
        attempts: '0',
        ...(webhook ? { webhook, webhook_status: 'pending', webhook_attempts: '0' } : {}),
      };
      await this.client
        .multi()
        .hset(this.key(id), { ...fields, body: JSON.stringify(body) })
        .expire(this.key(id), UNFINISHED_TTL_SECONDS)
        .xadd(this.stream, '*', 'job', id)
        .exec();
      return jobView(id, fields);
    });
  }

  async submitGroup(group: string, items: GroupItem[], owner: { keyId?: string }): Promise<string[]> {
    return unavailable(async () => {
      await this.room(items.length);
      const now = String(Date.now());
      const ids = items.map(() => 'job_' + randomBytes(12).toString('hex'));
      // One MULTI: every job and stream entry lands, or none does.
      const tx = this.client.multi();
      items.forEach((item, i) => {
        const key = this.key(ids[i]!);
        tx.hset(key, {
          status: 'queued',
          created_at: now,
          key: owner.keyId ?? '',
          model: item.model,
          attempts: '0',
          kind: item.kind,
          group,
          body: JSON.stringify(item.body),
        });
        tx.expire(key, UNFINISHED_TTL_SECONDS);
        tx.xadd(this.stream, '*', 'job', ids[i]!);
      });
      const results = await tx.exec();
      const failed = results?.find(([err]) => err);
      if (!results || failed) throw failed?.[0] ?? new Error('transaction aborted');
      return ids;
    });
  }

  /** Refuse `adding` jobs that do not fit under maxQueued. */
  private async room(adding: number): Promise<void> {
    await this.ensureGroup();
    const waiting = await this.client.xlen(this.stream);
    if (waiting + adding > this.settings.maxQueued) throw queueFull(waiting, adding, this.settings.maxQueued);
  }

  async peek(ids: string[]): Promise<Array<JobView | undefined>> {
    return unavailable(async () => {
      const tx = this.client.pipeline();
      for (const id of ids) tx.hgetall(this.key(id));
      const out = (await tx.exec()) ?? [];
      return ids.map((id, i) => {
        const h = out[i]?.[1] as Record<string, string> | undefined;
        return h?.status ? jobView(id, h) : undefined;
      });
    });
  }

  async cancelMany(ids: string[]): Promise<void> {
    await unavailable(async () => {
      await Promise.all(
        ids.map((id) => this.client.jobCancel(this.key(id), Date.now(), this.settings.resultTtlSeconds)),
      );
    });
  }

  onGroupJobEnded(listener: EndedListener): void {
    this.groupListener = listener;
  }

  gateGroupJobs(gate: GroupGate): void {
    this.groupGate = gate;
  }

  /** The job as its owner sees it. Another key's job, or none, is 404: ids do not leak across keys. */
  async get(id: string, keyId: string | undefined): Promise<JobView> {
    return unavailable(async () => jobView(id, await this.owned(id, keyId)));
  }

  private async owned(id: string, keyId: string | undefined): Promise<Record<string, string>> {
    const h = JOB_ID_RE.test(id) ? await this.client.hgetall(this.key(id)) : {};
    if (!h.status || (h.key ?? '') !== (keyId ?? ''))
      throw new GlimpseError('not_found', `No job '${id}' here.`, { param: 'id' });
    return h;
  }

  /** Cancel: a queued job never runs; a running one is stopped by its worker within a second. */
  async cancel(id: string, keyId: string | undefined): Promise<JobView> {
    return unavailable(async () => {
      await this.owned(id, keyId);
      await this.client.jobCancel(this.key(id), Date.now(), this.settings.resultTtlSeconds);
      return jobView(id, await this.client.hgetall(this.key(id)));
    });
  }

  /** Start this instance's workers. */
  start(): void {
    for (let i = 0; i < this.settings.workers; i++) {
      const conn = this.client.duplicate();
      conn.on('error', () => {}); // reported by the main connection
      this.blocking.push(conn);
      this.loops.push(this.work(conn));
    }
  }

  private async work(conn: Redis): Promise<void> {
    const idleMs = this.settings.claimIdleSeconds * 1000;
    while (!this.stopping.signal.aborted && !this.draining) {
      try {
        await this.ensureGroup();
        const entry = await nextEntry(this.client, conn, this.stream, this.consumer, idleMs);
        if (entry && !this.held.has(entry[0])) await this.process(entry[0], entry[1][1] ?? '');
      } catch (err) {
        if (this.stopping.signal.aborted) break;
        // Redis came back without the stream (restarted without persistence, flushed): the group is made again.
        if (/NOGROUP/.test((err as Error).message)) this.group = undefined;
        this.log.warn({ err: (err as Error).message }, 'job worker: Redis error; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async process(entryId: string, id: string): Promise<void> {
    const key = this.key(id);
    const { maxAttempts, resultTtlSeconds, claimIdleSeconds } = this.settings;
    this.held.add(entryId); // before any await: a second worker here that claims it in a stalled loop leaves it
    // While this worker has the entry (running the job, delivering its webhook), keep the claim
    // fresh: an entry goes idle, to be taken over, only when its worker is gone.
    const keepClaim = setInterval(
      () => this.client.xclaim(this.stream, GROUP, this.consumer, 0, entryId, 'JUSTID').catch(() => {}),
      Math.min(500, (claimIdleSeconds * 1000) / 3),
    );
    const release = () => (clearInterval(keepClaim), this.held.delete(entryId));
    let handedOver = false;
    try {
      const group = this.groupGate && (await this.client.hget(key, 'group'));
      // Its group said no (a batch whose window ended): cancelled here, so the start below declines it.
      if (group && !(await this.groupGate!(group))) await this.client.jobCancel(key, Date.now(), resultTtlSeconds);
      const attempt = await this.client.jobStart(
        key,
        Date.now(),
        this.consumer,
        maxAttempts,
        resultTtlSeconds,
        exhausted(maxAttempts),
      );
      if (attempt > 0 && (await this.runJob(key, id, attempt)) === 'handed_back') return await this.done(entryId);
      // Before the entry is acknowledged: a worker dying here leaves the entry for another, which
      // tells the listener again (it counts each job once).
      await this.tellGroup(key, id);
      // The webhook is delivered beside the workers, not by them: a slow or dead receiver holds its
      // own job's entry (claim kept fresh, acknowledged once delivery settles), never the next job.
      const delivery = this.announce(key, id)
        .then(async (settled) => {
          // A delivery that shutdown cut short leaves the entry unacknowledged for another instance.
          if (settled) await this.done(entryId);
        })
        .catch((err: Error) =>
          this.log.warn({ job: id, err: err.message }, 'job webhook: Redis error; the entry will be taken over'),
        )
        .finally(() => {
          release();
          this.deliveries.delete(delivery);
        });
      this.deliveries.add(delivery);
      handedOver = true;
      // Bounded: past this many deliveries in flight, the worker waits for one to settle.
      while (this.deliveries.size >= MAX_DELIVERIES) await Promise.race(this.deliveries);
    } finally {
      if (!handedOver) release();
    }
  }

  /** Run a started job to its end, or hand it back to the queue when this instance is stopping. */
  private async runJob(key: string, id: string, attempt: number): Promise<'ended' | 'handed_back'> {
    const [body, ownerKey, kind] = await this.client.hmget(key, 'body', 'key', 'kind');
    const owner = ownerKey || undefined;
    const stop = new AbortController();
    const watch = setInterval(
      () => {
        this.client.hget(key, 'status').then(
          (s) => s === 'cancelling' && stop.abort(new GlimpseError('client_closed', 'The job was cancelled.')),
          () => {},
        );
      },
      Math.min(500, (this.settings.claimIdleSeconds * 1000) / 3),
    );
    this.log.info({ job: id, attempt }, 'job started');
    this.running++;
    try {
      const result = await this.run(
        { id, body: JSON.parse(body ?? 'null'), keyId: owner, kind: (kind ?? 'chat') as JobKind },
        AbortSignal.any([stop.signal, this.stopping.signal]),
      );
      await this.finish(key, 'succeeded', { result: JSON.stringify(result) });
      this.ended.succeeded++;
      this.log.info({ job: id }, 'job succeeded');
    } catch (err) {
      const shuttingDown = this.stopping.signal.aborted || (isGlimpseError(err) && err.code === 'shutting_down');
      if (shuttingDown && !stop.signal.aborted) {
        // This instance is shutting down: back to the queue for another, not a failure.
        await this.client
          .multi()
          .hset(key, 'status', 'queued')
          .hincrby(key, 'attempts', -1)
          .xadd(this.stream, '*', 'job', id)
          .exec();
        this.ended.handed_back++;
        this.log.info({ job: id }, 'job handed back to the queue (shutting down)');
        return 'handed_back';
      } else if (stop.signal.aborted) {
        await this.finish(key, 'cancelled', {});
        this.ended.cancelled++;
      } else {
        const e = jobError(err);
        await this.finish(key, 'failed', { error: JSON.stringify({ code: e.code, message: e.message }) });
        this.ended.failed++;
        this.log.info({ job: id, code: e.code }, 'job failed');
      }
    } finally {
      this.running--;
      clearInterval(watch);
    }
    return 'ended';
  }

  private async tellGroup(key: string, id: string): Promise<void> {
    if (!this.groupListener) return;
    const [group, status] = await this.client.hmget(key, 'group', 'status');
    if (group && ENDED_STATUSES.has(status as JobStatus))
      await this.groupListener({ id, group, status: status as JobStatus });
  }

  /**
   * If the job has ended and names a webhook not yet settled, deliver its event. False when
   * shutdown interrupted the delivery (it stays pending for the next worker).
   */
  private async announce(key: string, id: string): Promise<boolean> {
    let told;
    try {
      told = await announceJob(
        id,
        await this.client.hgetall(key),
        this.settings,
        this.transport,
        this.stopping.signal,
        this.log,
      );
    } catch (err) {
      if (this.stopping.signal.aborted) return false;
      throw err;
    }
    if (!told) return true;
    await this.client.jobSetIfExists(key, ...Object.entries(told.fields).flat());
    this.webhooks[told.delivered ? 'delivered' : 'failed']++;
    return true;
  }

  private async finish(key: string, status: JobStatus, fields: Record<string, string>): Promise<void> {
    await this.client
      .multi()
      .hset(key, { ...fields, status, finished_at: Date.now() })
      .hdel(key, 'body') // the request (images included) is not kept once answered
      .expire(key, this.settings.resultTtlSeconds)
      .exec();
  }

  /** Acknowledge and drop the stream entry: the stream's length is the work still to do. */
  private async done(entryId: string): Promise<void> {
    await this.client.multi().xack(this.stream, GROUP, entryId).xdel(this.stream, entryId).exec();
  }

  /** What this instance's workers did, for metrics. */
  stats(): JobStats {
    return { running: this.running, ended: { ...this.ended }, webhooks: { ...this.webhooks } };
  }

  /** Jobs waiting or running across all instances. */
  backlog(): Promise<number> {
    return this.client.xlen(this.stream);
  }

  /** Shutdown begins: take no new jobs; running ones go on (the server's grace period bounds them). */
  drain(): void {
    this.draining = true;
  }

  /** Stop the workers (a running job goes back to the queue) and close the connections. */
  async close(): Promise<void> {
    this.stopping.abort(new GlimpseError('shutting_down', 'The server is shutting down.'));
    await Promise.allSettled(this.loops);
    // Deliveries stop at the abort (their entries stay for another instance) and settle here.
    await Promise.allSettled([...this.deliveries]);
    for (const c of this.blocking) c.disconnect();
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
