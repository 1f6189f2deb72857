/**
 * What /health and /metrics say about each replica, field by field, read while requests are held
 * at a replica (so in-flight is not zero by luck): state, limit and where it came from, in-flight,
 * routed, affinity hits, and the server's own gauges where it exposes them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeVllm, type FakeVllm, type FakeVllmOptions } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { sample } from '../helpers/metrics.js';
import { waitFor } from '../helpers/wait.js';
import { chatBody, colourPng, eventually, members, postChat } from '../helpers/pool.js';

const DOWN = 'http://127.0.0.1:9/v1';

/**
 * A vLLM double that holds every answer until `open()`, and a glimpse in front of it (`upstream`
 * built from its URL), both closed after the test.
 */
async function heldReplica(
  t: import('node:test').TestContext,
  fakeOpts: FakeVllmOptions,
  flags: (f: FakeVllm) => Record<string, unknown>,
): Promise<{ f: FakeVllm; g: RunningGlimpse; open: () => void }> {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const f = await startFakeVllm({ ...fakeOpts, script: () => ({ gate }) });
  const g = await startGlimpse({ engine: 'upstream', upstreamModel: f.model, upstreamHealthInterval: 0, ...flags(f) });
  t.after(async () => {
    open();
    await g.close();
    await f.close();
  });
  return { f, g, open };
}

test('/health and /metrics show every replica: state, limit, limit source, in-flight, routed and affinity hits', async (t) => {
  const {
    f: a,
    g,
    open,
  } = await heldReplica(t, {}, (f) => ({
    upstream: [`${f.url}#max=2`, DOWN],
    upstreamConnectTimeout: 1,
  }));
  const held = [postChat(g, chatBody()), postChat(g, chatBody())];
  await waitFor(() => a.running() === 2, 'two requests held at replica a');
  const [ha, hb] = await members(g);
  assert.deepEqual(
    [ha!.state, ha!.limit, ha!.limitSource, ha!.outstanding, ha!.routed, ha!.affinityHits],
    ['up', 2, 'configured', 2, 2, 0],
  );
  assert.deepEqual(
    [hb!.state, hb!.limit, hb!.limitSource, hb!.outstanding, hb!.routed, hb!.affinityHits],
    ['down', 8, 'adaptive', 0, 0, 0],
  );
  assert.match(hb!.lastError ?? '', /GET \/models failed/);
  const text = await (await fetch(g.url + '/metrics')).text();
  const at = (name: string, upstream: string, extra: Record<string, string> = {}) =>
    sample(text, name, { pool: 'primary', upstream, ...extra });
  assert.equal(at('glimpse_upstream_in_flight', a.url), 2);
  assert.equal(at('glimpse_upstream_in_flight', DOWN), 0);
  assert.equal(at('glimpse_upstream_limit', a.url, { source: 'configured' }), 2);
  assert.equal(at('glimpse_upstream_limit', DOWN, { source: 'adaptive' }), 8);
  assert.equal(at('glimpse_upstream_up', a.url, { state: 'up' }), 1);
  assert.equal(at('glimpse_upstream_up', DOWN, { state: 'down' }), 0);
  assert.equal(at('glimpse_upstream_routed_total', a.url), 2);
  assert.equal(at('glimpse_upstream_routed_total', DOWN), 0);
  assert.equal(at('glimpse_upstream_affinity_hits_total', a.url), 0);
  open();
  for (const res of await Promise.all(held)) assert.equal(res.status, 200);

  // The same image twice: the second is an affinity hit, in both views.
  const image = await colourPng(1, 2, 3);
  for (let i = 0; i < 2; i++) assert.equal((await postChat(g, chatBody({ image }))).status, 200);
  const [after] = await members(g);
  assert.deepEqual([after!.outstanding, after!.routed, after!.affinityHits], [0, 4, 1]);
  const later = await (await fetch(g.url + '/metrics')).text();
  assert.equal(sample(later, 'glimpse_upstream_affinity_hits_total', { upstream: a.url }), 1);
  assert.equal(sample(later, 'glimpse_upstream_routed_total', { upstream: a.url }), 4);
  assert.equal(sample(later, 'glimpse_upstream_in_flight', { upstream: a.url }), 0);
});

test("a replica whose limit is learned from its /metrics: /health and /metrics show the source and the server's own running and waiting", async (t) => {
  const { f, g, open } = await heldReplica(t, { maxSeqs: 2 }, (f) => ({
    upstream: [f.url],
    upstreamMetricsInterval: 0.05,
  }));
  const held = [0, 1, 2].map(() => postChat(g, chatBody()));
  await waitFor(() => f.running() === 2 && f.waiting() === 1, 'two running at the server, one in its queue');
  const [m] = await eventually(
    () => members(g),
    (v) => v[0]!.server?.running === 2 && v[0]!.server.waiting === 1,
    "the server's gauges read",
  );
  assert.equal(m!.limitSource, 'metrics');
  assert.equal(m!.server!.server, 'vllm');
  const text = await (await fetch(g.url + '/metrics')).text();
  assert.equal(sample(text, 'glimpse_upstream_server_running', { upstream: f.url }), 2);
  assert.equal(sample(text, 'glimpse_upstream_server_waiting', { upstream: f.url }), 1);
  assert.equal(sample(text, 'glimpse_upstream_limit', { upstream: f.url, source: 'metrics' }), m!.limit);
  assert.equal(sample(text, 'glimpse_upstream_in_flight', { upstream: f.url }), 3);
  open();
  for (const res of await Promise.all(held)) assert.equal(res.status, 200);
});
