/**
 * Faults in a pool of vLLM-like replicas with a real capacity, under load: a replica killed
 * mid-load loses no request that had not started streaming (retried on another) and ends the
 * started ones with an error event; a replica that comes back is used again; a replica whose
 * /metrics stops answering goes on with an adaptive limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse } from '../helpers/glimpse.js';
import { sseData, waitFor } from '../helpers/wait.js';
import { burst, chatBody, eventually, members, postChat } from '../helpers/pool.js';

const WORDS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const slow = () => ({ reasoning: [], content: WORDS, delayMs: 40 });

/** What one streamed answer brought: its text, and the error code it ended with (if any). */
async function streamed(res: Response): Promise<{ text: string; error?: string }> {
  let text = '';
  let error: string | undefined;
  for (const d of sseData(await res.text())) {
    if (!d.startsWith('{')) continue;
    const c = JSON.parse(d) as { choices?: Array<{ delta?: { content?: string } }>; error?: { code: string } };
    text += c.choices?.[0]?.delta?.content ?? '';
    if (c.error) error = c.error.code;
  }
  return { text, ...(error ? { error } : {}) };
}

test('a replica killed mid-load: requests not yet streaming are retried on another and answered in full; streaming ones end with an error event; it is used again once it is back', async (t) => {
  let a: FakeVllm = await startFakeVllm({ script: slow, maxSeqs: 2 });
  const b = await startFakeVllm({ script: slow, maxSeqs: 2 });
  // Limits above what the replicas run (nothing learned: no metrics reads), so some requests wait inside replica a when it dies.
  const g = await startGlimpse({
    engine: 'upstream',
    upstream: [a.url, b.url],
    upstreamModel: a.model,
    upstreamInitialLimit: 4,
    upstreamMetricsInterval: 0,
    upstreamHealthInterval: 0.2,
    upstreamBreakerCooldown: 0.3,
    upstreamRetryBackoffMs: 1,
    upstreamRetries: 2,
  });
  t.after(async () => {
    await g.close();
    await Promise.all([a.close(), b.close()]);
  });
  const answers = Array.from({ length: 8 }, () => postChat(g, chatBody({ stream: true })).then(streamed));
  await waitFor(
    () => a.running() === 2 && a.waiting() === 2 && a.contentChunksSent() > 0,
    'replica a streaming two and holding two in its queue',
  );
  await a.close();
  const results = await Promise.all(answers);
  const failed = results.filter((r) => r.error);
  assert.ok(failed.length >= 1 && failed.length <= 2, `only the streams replica a had started fail (${failed.length})`);
  for (const r of failed) {
    assert.equal(r.error, 'upstream_error');
    assert.ok(
      r.text.length > 0 && r.text.length < WORDS.length,
      'a failed stream had started: its tokens so far, then the error',
    );
  }
  for (const r of results.filter((x) => !x.error))
    assert.equal(r.text, WORDS.join(''), 'every other request was answered in full');
  assert.equal(results.length - failed.length, 8 - failed.length);
  await waitFor(() => g.pipeline.stats().inFlight === 0, 'nothing left in flight');

  // Back at the same address: the health checks and the breaker's probe put it back in rotation.
  a = await startFakeVllm({ script: slow, maxSeqs: 2, port: a.port });
  await eventually(
    () => members(g),
    (v) => v[0]!.state === 'up' || v[0]!.state === 'probing',
    'replica a checked up again',
  );
  const served = () => a.requests.filter((r) => r.method === 'POST').length;
  for (let i = 0; i < 10 && served() === 0; i++)
    assert.deepEqual(new Set(await burst(g, 4, () => chatBody())), new Set([200]));
  assert.ok(served() > 0, 'replica a answers again');
  assert.equal((await members(g))[0]!.state, 'up');
});

test('a replica whose /metrics stops answering falls back to an adaptive limit and keeps serving; when its metrics return, they teach the limit again', async (t) => {
  const f = await startFakeVllm({ script: slow, maxSeqs: 4 });
  const g = await startGlimpse({
    engine: 'upstream',
    upstream: [f.url],
    upstreamModel: f.model,
    upstreamHealthInterval: 0,
    upstreamMetricsInterval: 0.05,
  });
  t.after(async () => {
    await g.close();
    await f.close();
  });
  await eventually(
    () => members(g),
    (v) => v[0]!.limitSource === 'metrics',
    'the limit read from the gauges',
  );
  f.metrics = 'hang';
  const lost = await eventually(
    () => members(g),
    (v) => v[0]!.limitSource === 'adaptive',
    'the limit turned adaptive',
  );
  assert.equal(lost[0]!.server, undefined, 'no stale gauges are shown');
  assert.deepEqual(new Set(await burst(g, 8, () => chatBody())), new Set([200]));
  f.metrics = 'vllm';
  await eventually(
    () => members(g),
    (v) => v[0]!.limitSource === 'metrics',
    'the gauges read again',
  );
});
