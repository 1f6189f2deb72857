/**
 * Routing by load, without a network: a replica at its limit is not chosen while another has
 * room, even when the other's waiting gauge (up to a reading old) makes it look busier.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UpstreamPool } from '../../src/engines/upstream/pool.js';
import { offlinePool } from '../helpers/pool.js';

function twoReplicas(): UpstreamPool {
  return offlinePool(['http://127.0.0.1:9/a/v1#max=4', 'http://127.0.0.1:9/b/v1#max=4']);
}

test('a replica at its limit is passed over for one with room, whatever a stale waiting gauge says', async (t) => {
  const pool = twoReplicas();
  t.after(() => pool.close());
  const [a, b] = pool.members as [(typeof pool.members)[number], (typeof pool.members)[number]];
  a.outstanding = 3;
  a.gauges = { server: 'vllm', running: 3, waiting: 4 }; // read a second ago, when it was busier
  b.outstanding = 4;
  b.gauges = { server: 'vllm', running: 4, waiting: 0 };
  assert.equal(pool.acquire(new Set()), a, 'a has a free place; b is at its limit');
  assert.equal(a.outstanding, 4);
  // Both at their limit now: the least loaded by the same measure still gets it (the caller admitted it).
  assert.equal(pool.acquire(new Set()), b);
});

test('among replicas with room, the least loaded for its limit, its waiting gauge counted', async (t) => {
  const pool = twoReplicas();
  t.after(() => pool.close());
  const [a, b] = pool.members as [(typeof pool.members)[number], (typeof pool.members)[number]];
  a.outstanding = 1;
  a.gauges = { server: 'vllm', running: 1, waiting: 2 };
  b.outstanding = 2;
  b.gauges = { server: 'vllm', running: 2, waiting: 0 };
  assert.equal(pool.acquire(new Set()), b);
});
