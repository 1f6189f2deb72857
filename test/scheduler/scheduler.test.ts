import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { Scheduler } from '../../src/scheduler/index.js';
import { GlimpseError } from '../../src/core/index.js';

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof GlimpseError ? err.code : String(err);
  }
};

test('admits up to maxInFlight at once and queues the rest in arrival order', async () => {
  const s = new Scheduler({ maxInFlight: 2, maxQueue: 5, queueTimeoutMs: 10_000 });
  const a = await s.acquire();
  const b = await s.acquire();
  assert.equal(s.inFlight, 2);
  const order: string[] = [];
  const c = s.acquire().then((slot) => (order.push('c'), slot));
  const d = s.acquire().then((slot) => (order.push('d'), slot));
  assert.equal(s.queued, 2);
  a.release();
  const sc = await c;
  assert.equal(s.inFlight, 2);
  assert.equal(s.queued, 1);
  b.release();
  const sd = await d;
  assert.deepEqual(order, ['c', 'd']);
  assert.ok(sc.waitedMs >= 0 && sc.queuedAt === 1 && sd.queuedAt === 2);
  sc.release();
  sd.release();
  assert.equal(s.inFlight, 0);
  assert.equal(s.queued, 0);
});

test('a full queue refuses at once with queue_full and a Retry-After header', async () => {
  const s = new Scheduler({ maxInFlight: 1, maxQueue: 1, queueTimeoutMs: 10_000 });
  const a = await s.acquire();
  const waiting = s.acquire();
  const err = await s.acquire().catch((e: unknown) => e);
  assert.ok(err instanceof GlimpseError);
  assert.equal(err.code, 'queue_full');
  assert.equal(err.status, 429);
  assert.ok(Number.isInteger(err.retryAfterSeconds) && err.retryAfterSeconds! >= 1, 'a Retry-After in whole seconds');
  assert.throws(
    () => s.checkAdmission(),
    (e: unknown) => e instanceof GlimpseError && e.code === 'queue_full',
  );
  assert.equal(s.stats().rejectedFull, 2, 'acquire and checkAdmission both count their refusal');
  a.release();
  (await waiting).release();
});

test('maxQueue 0 means no waiting: the first request beyond the cap is refused', async () => {
  const s = new Scheduler({ maxInFlight: 1, maxQueue: 0, queueTimeoutMs: 10_000 });
  const a = await s.acquire();
  assert.equal(await codeOf(s.acquire()), 'queue_full');
  a.release();
  (await s.acquire()).release();
});

test('a request that waits longer than the queue timeout gets queue_timeout and leaves the queue', async () => {
  const s = new Scheduler({ maxInFlight: 1, maxQueue: 4, queueTimeoutMs: 30 });
  const a = await s.acquire();
  assert.equal(await codeOf(s.acquire()), 'queue_timeout');
  assert.equal(s.queued, 0);
  assert.equal(s.stats().timedOut, 1);
  a.release();
  assert.equal(s.inFlight, 0);
});

test('an aborted waiter leaves the queue at once and does not take a slot later', async () => {
  const s = new Scheduler({ maxInFlight: 1, maxQueue: 4, queueTimeoutMs: 10_000 });
  const a = await s.acquire();
  const ac = new AbortController();
  const p = s.acquire({ signal: ac.signal });
  assert.equal(s.queued, 1);
  ac.abort();
  assert.equal(await codeOf(p), 'client_closed');
  assert.equal(s.queued, 0);
  a.release();
  assert.equal(s.inFlight, 0);
});

test('keys take turns: a key with many queued requests cannot starve another key', async () => {
  const s = new Scheduler({ maxInFlight: 1, maxQueue: 20, queueTimeoutMs: 10_000 });
  const first = await s.acquire({ keyId: 'busy' });
  const served: string[] = [];
  const all: Promise<void>[] = [];
  const enqueue = (key: string, label: string) =>
    all.push(
      s.acquire({ keyId: key }).then((slot) => {
        served.push(label);
        setImmediate(() => slot.release());
      }),
    );
  for (let i = 1; i <= 4; i++) enqueue('busy', `busy${i}`);
  enqueue('quiet', 'quiet1');
  enqueue('quiet', 'quiet2');
  first.release();
  await Promise.all(all);
  // quiet1 is served right after the first busy request, not after all four.
  assert.deepEqual(served.slice(0, 4), ['busy1', 'quiet1', 'busy2', 'quiet2']);
  assert.deepEqual(served.slice(4), ['busy3', 'busy4']);
});

test('queue positions are reported on joining and again as the queue moves', async () => {
  const s = new Scheduler({ maxInFlight: 1, maxQueue: 5, queueTimeoutMs: 10_000 });
  const a = await s.acquire();
  const seenB: number[] = [];
  const seenC: number[] = [];
  const b = s.acquire({ onPosition: (p) => seenB.push(p) });
  const c = s.acquire({ onPosition: (p) => seenC.push(p) });
  assert.deepEqual(seenB, [1]);
  assert.deepEqual(seenC, [2]);
  a.release();
  const sb = await b;
  await tick();
  assert.deepEqual(seenC, [2, 1]);
  sb.release();
  (await c).release();
});

test('drain refuses queued and new requests with shutting_down and resolves when the last slot is released', async () => {
  const s = new Scheduler({ maxInFlight: 1, maxQueue: 5, queueTimeoutMs: 10_000 });
  const a = await s.acquire();
  const queued = s.acquire();
  let drained = false;
  const d = s.drain().then(() => (drained = true));
  assert.equal(await codeOf(queued), 'shutting_down');
  assert.equal(await codeOf(s.acquire()), 'shutting_down');
  await tick();
  assert.equal(drained, false);
  a.release();
  await d;
  assert.equal(drained, true);
});

test('release is idempotent: releasing twice frees one slot only', async () => {
  const s = new Scheduler({ maxInFlight: 2, maxQueue: 0, queueTimeoutMs: 1000 });
  const a = await s.acquire();
  const b = await s.acquire();
  a.release();
  a.release();
  assert.equal(s.inFlight, 1);
  b.release();
  assert.equal(s.inFlight, 0);
});

test('background work waits while any interactive request waits, and takes a slot only after them', async () => {
  const s = new Scheduler({ maxInFlight: 2, maxQueue: 5, queueTimeoutMs: 10_000 });
  const a = await s.acquire();
  const b = await s.acquire();
  const order: string[] = [];
  const job = s.acquire({ background: true }).then((slot) => (order.push('job'), slot));
  const user = s.acquire().then((slot) => (order.push('user'), slot));
  assert.deepEqual([s.queued, s.stats().queuedBackground], [1, 1], 'background is counted apart from the queue');
  a.release();
  const u = await user;
  b.release();
  const j = await job;
  assert.deepEqual(order, ['user', 'job']);
  u.release();
  j.release();
  assert.equal(s.inFlight, 0);
});

test('background work never takes the interactive reserve, and never times out or meets maxQueue', async () => {
  const s = new Scheduler({ maxInFlight: 2, maxQueue: 0, queueTimeoutMs: 20, interactiveReserve: 1 });
  const first = await s.acquire({ background: true });
  let second: Awaited<ReturnType<typeof s.acquire>> | undefined;
  const pending = s.acquire({ background: true }).then((slot) => (second = slot));
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(second, undefined, 'the reserved slot stays free of background work, past the queue timeout');
  // ...so an interactive request finds it at once, with no queue at all (maxQueue 0).
  const user = await s.acquire();
  assert.equal(s.inFlight, 2);
  first.release();
  user.release();
  await pending;
  assert.ok(second);
  second!.release();
  await s.idle();
});

test('draining refuses waiting background work with shutting_down; an aborted one leaves the line', async () => {
  const s = new Scheduler({ maxInFlight: 1, maxQueue: 5, queueTimeoutMs: 10_000 });
  const held = await s.acquire();
  const ac = new AbortController();
  const left = codeOf(s.acquire({ background: true, signal: ac.signal }));
  ac.abort();
  assert.equal(await left, 'client_closed');
  const refused = codeOf(s.acquire({ background: true }));
  const drained = s.drain();
  assert.equal(await refused, 'shutting_down');
  held.release();
  await drained;
});

test('with an engine capacity per pool, each pool is admitted up to its own capacity, and a full pool does not hold up another', async () => {
  const caps: Record<string, number> = { a: 1, b: 2 };
  const s = new Scheduler({
    capacity: (pool) => (pool ? caps[pool]! : caps.a! + caps.b!),
    maxQueue: 10,
    queueTimeoutMs: 10_000,
  });
  const a1 = await s.acquire({ pool: 'a' });
  const waitingA = s.acquire({ pool: 'a' });
  assert.equal(s.queued, 1);
  // The waiter for the full pool 'a' is ahead in the line, yet 'b' has room: admitted at once.
  const b1 = await s.acquire({ pool: 'b' });
  const b2 = await s.acquire({ pool: 'b' });
  assert.deepEqual([s.inFlight, s.stats().maxInFlight], [3, 3]);
  const waitingB = s.acquire({ pool: 'b' });
  // A freed 'b' slot goes to the 'b' waiter, not to the 'a' waiter ahead of it.
  b1.release();
  const b3 = await waitingB;
  assert.equal(s.queued, 1);
  a1.release();
  const a2 = await waitingA;
  for (const slot of [a2, b2, b3]) slot.release();
  await s.idle();
});

test('capacity is read at each admission; capacityChanged() admits waiters when it grows; maxInFlight stays a ceiling over it', async () => {
  let cap = 1;
  const s = new Scheduler({ capacity: () => cap, maxInFlight: 3, maxQueue: 10, queueTimeoutMs: 10_000 });
  const held = [await s.acquire()];
  const waiting = [s.acquire(), s.acquire(), s.acquire()];
  cap = 10;
  s.capacityChanged();
  held.push(await waiting[0]!, await waiting[1]!);
  assert.deepEqual([s.inFlight, s.queued, s.stats().maxInFlight], [3, 1, 3], 'the ceiling of 3 holds the fourth back');
  held.pop()!.release();
  held.push(await waiting[2]!);
  // Capacity falling below what runs stops admissions without touching what runs.
  cap = 1;
  const late = s.acquire();
  for (const slot of held) slot.release();
  (await late).release();
  await s.idle();
});

test("background work respects each pool's capacity and the interactive reserve within it", async () => {
  const s = new Scheduler({
    capacity: (pool) => (pool === 'x' ? 2 : 4),
    maxQueue: 0,
    queueTimeoutMs: 1000,
    interactiveReserve: 1,
  });
  const job = await s.acquire({ pool: 'x', background: true });
  let second: Awaited<ReturnType<typeof s.acquire>> | undefined;
  const pending = s.acquire({ pool: 'x', background: true }).then((slot) => (second = slot));
  // Another pool's job is not behind pool x's.
  const other = await s.acquire({ pool: 'y', background: true });
  await tick();
  assert.equal(second, undefined, 'pool x keeps its last slot for interactive requests');
  const user = await s.acquire({ pool: 'x' });
  job.release();
  await tick();
  assert.equal(second, undefined, 'with the user running, the free slot is the reserve again');
  user.release();
  await pending;
  for (const slot of [other, second!]) slot.release();
  await s.idle();
});

test('checkAdmission without a pool (before the body is read) refuses once the line is full and no pool has room', async () => {
  const s = new Scheduler({ capacity: (pool) => (pool === undefined ? 2 : 1), maxQueue: 1, queueTimeoutMs: 10_000 });
  const a = await s.acquire({ pool: 'a' });
  s.checkAdmission();
  const b = await s.acquire({ pool: 'b' });
  const waiting = s.acquire({ pool: 'a' });
  assert.throws(
    () => s.checkAdmission(),
    (e: unknown) => e instanceof GlimpseError && e.code === 'queue_full',
  );
  a.release();
  const a2 = await waiting;
  s.checkAdmission();
  for (const slot of [a2, b]) slot.release();
  await s.idle();
});
