import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DecodeGate } from '../../src/images/index.js';

test('the decode gate runs at most its limit at once, in arrival order', async () => {
  const gate = new DecodeGate(2);
  let inFlight = 0;
  let peak = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 7 }, (_, i) =>
      gate.run(async () => {
        order.push(i);
        inFlight++;
        peak = Math.max(peak, inFlight);
        await sleep(5);
        inFlight--;
      }),
    ),
  );
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(gate.active, 0);
  assert.equal(gate.queued, 0);
});

test('a cancelled waiter leaves the queue without running, and a failed task frees its slot', async () => {
  const gate = new DecodeGate(1);
  let release!: () => void;
  const blocker = gate.run(() => new Promise<void>((r) => (release = r)));
  const ac = new AbortController();
  let ran = false;
  const waiter = gate.run(async () => {
    ran = true;
  }, ac.signal);
  assert.equal(gate.queued, 1);
  ac.abort(new Error('client went away'));
  await assert.rejects(waiter, /client went away/);
  assert.equal(gate.queued, 0);
  release();
  await blocker;
  assert.equal(ran, false);
  await assert.rejects(
    gate.run(async () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(gate.active, 0);
  assert.equal(await gate.run(async () => 42), 42);
});
