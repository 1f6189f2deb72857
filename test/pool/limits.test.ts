/**
 * Per-replica limits through a real glimpse in front of vLLM-like test doubles with a real
 * capacity: set per URL or in config, learned from vLLM's or SGLang's own /metrics gauges, or
 * adaptive where the server exposes none. The scheduler admits the sum of the limits; the rest
 * waits in glimpse's queue, not in the replicas'.
 */
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { startFakeVllm, type FakeVllm, type MetricsMode } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { waitFor } from '../helpers/wait.js';
import { sample } from '../helpers/metrics.js';
import { burst, chatBody, eventually, members, postChat } from '../helpers/pool.js';

async function pool(
  t: import('node:test').TestContext,
  fakes: FakeVllm[],
  upstream: string[],
  flags: Record<string, unknown> = {},
): Promise<RunningGlimpse> {
  const g = await startGlimpse({
    engine: 'upstream',
    upstream,
    upstreamModel: fakes[0]!.model,
    upstreamHealthInterval: 0,
    upstreamMetricsInterval: 0.05,
    maxQueue: 256,
    ...flags,
  });
  t.after(async () => {
    await g.close();
    await Promise.all(fakes.map((f) => f.close()));
  });
  return g;
}

const slow = () => ({ reasoning: [], content: ['a', 'b', 'c', 'd', 'e'], delayMs: 40 });

test('limits set per URL (#max=) and in upstreamLimits are kept: the scheduler admits their sum, each replica gets at most its own, the rest waits in glimpse', async (t) => {
  const a = await startFakeVllm({ script: slow });
  const b = await startFakeVllm({ script: slow });
  const g = await pool(t, [a, b], [`${a.url}#max=1`, b.url], { upstreamLimits: { [b.url]: 2 } });
  const view = await members(g);
  assert.deepEqual(
    view.map((m) => [m.base, m.limit, m.limitSource]),
    [
      [a.url, 1, 'configured'],
      [b.url, 2, 'configured'],
    ],
  );
  const done = burst(g, 6, () => chatBody());
  await waitFor(
    () => a.running() + b.running() === 3 && g.pipeline.stats().queued === 3,
    'three running, three queued in glimpse',
  );
  assert.deepEqual([a.running(), b.running(), a.waiting() + b.waiting()], [1, 2, 0]);
  assert.equal(g.pipeline.stats().maxInFlight, 3);
  const metrics = await (await fetch(g.url + '/metrics')).text();
  assert.equal(sample(metrics, 'glimpse_upstream_limit', { upstream: a.url, source: 'configured' }), 1);
  assert.equal(sample(metrics, 'glimpse_upstream_in_flight', { upstream: b.url }), 2);
  assert.deepEqual(await done, [200, 200, 200, 200, 200, 200]);
  assert.equal(Math.max(a.peakWaiting(), b.peakWaiting()), 0, 'no request ever waited inside a replica');
  if (existsSync('/usr/bin/promtool')) {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    assert.equal(r.status, 0, 'the per-replica metrics pass promtool: ' + r.stdout + r.stderr);
  }
});

for (const mode of ['vllm', 'sglang'] as MetricsMode[]) {
  test(`a limit is learned from ${mode}'s own running/waiting gauges: a replica running 3 with a queue gets limit 3 (what it runs, one more sent ahead only near a turnover), and after that its own queue stays near empty`, async (t) => {
    const f = await startFakeVllm({ script: slow, maxSeqs: 3, metrics: mode });
    const g = await pool(t, [f], [f.url], { upstreamInitialLimit: 8 });
    // Closed loop: 12 clients asking again as soon as answered, until the limit is learned.
    let learning = true;
    const clients = Array.from({ length: 12 }, async () => {
      while (learning) await (await postChat(g, chatBody())).arrayBuffer();
    });
    await waitFor(() => f.waiting() > 0, 'the replica queueing what the initial limit let through');
    const view = await eventually(
      () => members(g),
      (v) => v[0]!.limitSource === 'metrics' && v[0]!.limit === 3,
      'the limit learned from the gauges',
    );
    assert.equal(view[0]!.server?.running !== undefined, true, "/health shows the server's own gauges");
    learning = false;
    await Promise.all(clients);
    // Learned: another wave of 12 waits in glimpse, not in the replica: one sent ahead there by design, and a probe one above may queue one more.
    const peakBefore = f.peakWaiting();
    f.resetPeakWaiting();
    assert.deepEqual(new Set(await burst(g, 12, () => chatBody())), new Set([200]));
    assert.ok(
      f.peakWaiting() <= 2,
      `replica's own queue peaked at ${f.peakWaiting()} after learning (${peakBefore} before)`,
    );
  });
}

test('a replica without /metrics (Ollama, llama-server, a cloud API) gets an adaptive limit, and serves', async (t) => {
  const f = await startFakeVllm({ script: slow, metrics: 'none' });
  const g = await pool(t, [f], [f.url]);
  const [m] = await members(g);
  assert.deepEqual([m!.limitSource, m!.limit, m!.server], ['adaptive', 8, undefined]);
  assert.deepEqual(new Set(await burst(g, 10, () => chatBody())), new Set([200]));
  assert.equal((await members(g))[0]!.limitSource, 'adaptive');
});
