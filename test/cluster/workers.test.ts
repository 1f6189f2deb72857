/**
 * `glimpse serve --workers 2` as a real process tree on the simulated engine: two worker
 * processes answer on the one port, a killed worker is replaced, /metrics speaks for the whole
 * cluster, and SIGTERM drains both workers with the single-process semantics (ready fails, new
 * requests 503 shutting_down, short requests finish, long ones end with a shutting_down event,
 * exit 0).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answeredBy, startCluster } from '../helpers/cluster.js';
import { sseData } from '../helpers/wait.js';

const chat = (maxTokens: number) =>
  JSON.stringify({ stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content: 'Describe.' }] });
// ~20 tokens a second: 400 tokens cannot finish within the 5 s grace, 4 can. The grace is the window in
// which the test sees the drain (ready failing, new requests refused): 2 s was thin on a loaded machine.
const SLOW = {
  GLIMPSE_SIMULATED_TTFT_MS: '0',
  GLIMPSE_SIMULATED_TOKENS_PER_SECOND: '20',
  GLIMPSE_SIMULATED_ANSWER_TOKENS: '400',
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('two worker processes answer on one port; a killed one is replaced; /metrics adds them up', async () => {
  const cluster = await startCluster(['--engine', 'simulated', '--workers', '2'], SLOW);
  try {
    const pids = cluster.pids();
    assert.deepEqual([...pids.keys()].sort(), ['1', '2']);
    assert.notEqual(pids.get('1'), pids.get('2'));
    assert.ok(
      !pids.has(String(cluster.child.pid)) && [...pids.values()].every((p) => p !== cluster.child.pid && alive(p)),
      'workers are processes of their own',
    );
    assert.deepEqual(
      [...(await answeredBy(cluster, ['1', '2']))].sort(),
      ['1', '2'],
      'both workers answer on the one port',
    );

    // Each worker answers a generation; the sum reaches /metrics whichever worker takes the scrape.
    for (let served = new Set<string>(); served.size < 2;) {
      const a = await cluster.ask('/v1/chat/completions', {
        method: 'POST',
        body: JSON.stringify({ max_tokens: 2, messages: [{ role: 'user', content: 'Hi' }] }),
      });
      assert.equal(a.status, 200, a.body);
      served.add(a.worker);
    }
    const metrics = await cluster.ask('/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^glimpse_cluster_workers 2$/m);
    const generations = /^glimpse_generations_total\{model="glimpse-simulated",outcome="length"\} (\d+)$/m.exec(
      metrics.body,
    );
    assert.ok(Number(generations?.[1]) >= 2, 'generations of both workers are counted: ' + generations?.[0]);

    const killed = pids.get('1')!;
    process.kill(killed, 'SIGKILL');
    for (let i = 0; cluster.pids().get('1') === killed; i++) {
      assert.ok(i < 1200, 'worker 1 is started again: ' + cluster.logs().slice(-2000));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(alive(cluster.pids().get('1')!) && !alive(killed));
    assert.match(cluster.logs(), /worker exited unasked; starting another/);
    assert.deepEqual([...(await answeredBy(cluster, ['1', '2']))].sort(), ['1', '2'], 'the new worker answers');
    assert.match((await cluster.ask('/metrics')).body, /^glimpse_cluster_worker_restarts_total 1$/m);
  } finally {
    await cluster.stop();
  }
});

test('SIGTERM drains every worker: ready fails, new requests get 503, short requests finish, long ones end with shutting_down, exit 0', async () => {
  const cluster = await startCluster(
    ['--engine', 'simulated', '--workers', '2', '--grace-shutdown-seconds', '5'],
    SLOW,
  );
  try {
    // A long and a short stream on each worker.
    const streams = new Map<string, { long?: Promise<string>; short?: Promise<string> }>();
    const count = (kind: 'long' | 'short') => [...streams.values()].filter((s) => s[kind] !== undefined).length;
    for (let i = 0; count('long') + count('short') < 4; i++) {
      assert.ok(i < 200, 'streams reach both workers');
      const tokens = count('long') < 2 ? 400 : 4;
      const res = await cluster.open('/v1/chat/completions', chat(tokens));
      assert.equal(res.status, 200);
      const mine = streams.get(res.worker) ?? {};
      const kind = tokens === 400 ? 'long' : 'short';
      if (mine[kind]) {
        res.abort();
        continue;
      }
      mine[kind] = res.body;
      streams.set(res.worker, mine);
    }
    cluster.child.kill('SIGTERM');
    const notReady = new Set<string>();
    for (let i = 0; i < 400 && notReady.size < 2; i++) {
      const a = await cluster.ask('/ready').catch(() => undefined);
      if (a?.status === 503) notReady.add(a.worker);
    }
    assert.deepEqual([...notReady].sort(), ['1', '2'], '/ready fails on both workers');
    const refused = await cluster.ask('/v1/chat/completions', { method: 'POST', body: chat(4) });
    assert.equal(refused.status, 503);
    assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'shutting_down');

    for (const [worker, s] of streams) {
      const short = sseData(await s.short!);
      assert.equal(short.at(-1), '[DONE]');
      assert.ok(
        short.some((d) => d.includes('"finish_reason":"length"')),
        `the short request on worker ${worker} finished normally`,
      );
      const long = sseData(await s.long!);
      assert.equal(long.at(-1), '[DONE]');
      assert.equal(
        (JSON.parse(long.at(-2)!) as { error: { code: string } }).error.code,
        'shutting_down',
        `worker ${worker}'s long request ended with shutting_down`,
      );
    }
    assert.equal(await cluster.exited, 0, cluster.logs().slice(-3000));
    for (const pid of cluster.pids().values()) assert.ok(!alive(pid), 'no worker outlives the primary');
  } finally {
    await cluster.stop();
  }
});
