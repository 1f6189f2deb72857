/**
 * Affinity-aware dequeuing: when a slot frees, the line gives it first to a waiter whose home
 * (the replica holding its image) has room, passes each waiter over a bounded number of times,
 * and never leaves a slot unused for want of a suiting waiter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler } from '../../src/scheduler/index.js';
import type { Slot } from '../../src/scheduler/types.js';

/** Two replicas A and B of 2 slots each; `free` says what each takes now, as a pool would. */
function setup(maxSkips: number, capacity = () => 4) {
  const free: Record<string, number> = { A: 0, B: 0 };
  const s = new Scheduler({
    capacity,
    maxQueue: 100,
    queueTimeoutMs: 10_000,
    maxSkips,
    home: (_pool, key) => (key in free ? { id: key, free: free[key]! } : undefined),
  });
  return { s, free };
}

async function fill(s: Scheduler, n: number): Promise<Slot[]> {
  return Promise.all(Array.from({ length: n }, () => s.acquire()));
}

function queue(s: Scheduler, names: Array<[string, string | undefined]>, order: string[]): Array<Promise<Slot>> {
  return names.map(([name, home]) =>
    s.acquire({ affinity: home }).then((slot) => {
      order.push(name);
      return slot;
    }),
  );
}

test('a freed slot on B goes to the first waiter whose image B holds, past waiters homed on a full A', async () => {
  const { s, free } = setup(8);
  const running = await fill(s, 4);
  const order: string[] = [];
  const waiting = queue(
    s,
    [
      ['a1', 'A'],
      ['a2', 'A'],
      ['b1', 'B'],
      ['x1', undefined],
    ],
    order,
  );
  free.B = 1; // a request on B finished
  running[0]!.release();
  await waiting[2];
  assert.deepEqual(order, ['b1'], 'b1 jumps a1 and a2, whose home A is still full');
  free.B = 0;
  free.A = 1;
  running[1]!.release();
  await waiting[0];
  assert.deepEqual(order, ['b1', 'a1']);
  // A is full again: x1, whose image no replica holds, suits any free slot and goes before a2.
  free.A = 0;
  running[2]!.release();
  await waiting[3];
  assert.deepEqual(order, ['b1', 'a1', 'x1']);
  // Nobody left suits the free slot: the first in line is taken all the same, no slot is left idle.
  running[3]!.release();
  await waiting[1];
  assert.deepEqual(order, ['b1', 'a1', 'x1', 'a2']);
  for (const p of waiting) (await p).release();
  assert.equal(s.inFlight, 0);
});

test('a waiter passed over maxSkips times is taken next whatever its home', async () => {
  const { s, free } = setup(2);
  const running = await fill(s, 4);
  const order: string[] = [];
  const waiting = queue(
    s,
    [
      ['a1', 'A'],
      ['b1', 'B'],
      ['b2', 'B'],
      ['b3', 'B'],
    ],
    order,
  );
  free.B = 1;
  running[0]!.release();
  await waiting[1];
  running[1]!.release();
  await waiting[2];
  assert.deepEqual(order, ['b1', 'b2'], 'a1 passed over twice');
  running[2]!.release();
  await waiting[0];
  assert.deepEqual(order, ['b1', 'b2', 'a1'], 'with two skips a1 may wait no longer, though b3 suits B better');
  running[3]!.release();
  await waiting[3];
  for (const p of waiting) (await p).release();
});

test('one dispatch round gives a home no more waiters than it has room for', async () => {
  let cap = 2;
  const { s: s2, free } = setup(8, () => cap);
  const running = await fill(s2, 2);
  const order: string[] = [];
  const waiting = queue(
    s2,
    [
      ['b1', 'B'],
      ['b2', 'B'],
      ['a1', 'A'],
    ],
    order,
  );
  // Two more slots at once (a limit rose), one of them on B, one on A.
  free.B = 1;
  free.A = 1;
  cap = 4;
  s2.capacityChanged();
  await Promise.all([waiting[0], waiting[2]]);
  assert.deepEqual(order, ['b1', 'a1'], "b2 is not given B's one free slot a second time in the same round");
  running[0]!.release();
  await waiting[1];
  for (const r of running.slice(1)) r.release();
  for (const p of waiting) (await p).release();
});

test('maxSkips 0 keeps strict queue order', async () => {
  const { s, free } = setup(0);
  const running = await fill(s, 4);
  const order: string[] = [];
  const waiting = queue(
    s,
    [
      ['a1', 'A'],
      ['b1', 'B'],
    ],
    order,
  );
  free.B = 1;
  running[0]!.release();
  await waiting[0];
  assert.deepEqual(order, ['a1']);
  for (const r of running.slice(1)) r.release();
  for (const p of waiting) (await p).release();
});
