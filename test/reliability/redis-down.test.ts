/**
 * Redis down at scale: glimpse with --redis-url in front of a pool of vLLM-like replicas, under a
 * concurrent closed-loop load, loses its Redis (killed outright) mid-load. Every chat request is
 * still answered in full, none hangs (each has a deadline far above its normal time), the jobs API
 * says jobs_unavailable (503) instead of waiting, /health says Redis is down while staying
 * healthy; Redis back on the same port, /health says so and jobs run again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { hasRedis, startRedis, type RunningRedis } from '../helpers/redis.js';
import { chatBody, eventually } from '../helpers/pool.js';

const WORDS = ['a', 'b', 'c', 'd', 'e', 'f'];

const health = async (g: RunningGlimpse) => {
  const res = await fetch(g.url + '/health');
  return { code: res.status, ...((await res.json()) as { status: string; redis?: { status: string; note?: string } }) };
};

const submitJob = (g: RunningGlimpse) =>
  fetch(g.url + '/v1/jobs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(chatBody({ text: 'a job' })),
  });

async function jobRuns(g: RunningGlimpse): Promise<void> {
  const res = await submitJob(g);
  assert.equal(res.status, 202, await res.clone().text());
  const { id } = (await res.json()) as { id: string };
  await eventually(
    async () => ((await (await fetch(`${g.url}/v1/jobs/${id}`)).json()) as { status: string }).status,
    (s) => s === 'succeeded',
    `job ${id} to succeed`,
  );
}

test(
  'Redis killed mid-load: every chat request is answered, the jobs API answers jobs_unavailable, /health says Redis is down; back on its port, jobs run again',
  { skip: !hasRedis && 'redis-server is not installed' },
  async (t) => {
    let redis: RunningRedis = await startRedis();
    const fakes = await Promise.all(
      [0, 1, 2].map(() => startFakeVllm({ script: () => ({ reasoning: [], content: WORDS, delayMs: 10 }) })),
    );
    const g = await startGlimpse({
      engine: 'upstream',
      upstream: fakes.map((f) => f.url),
      upstreamModel: fakes[0]!.model,
      upstreamHealthInterval: 0,
      redisUrl: redis.url,
      maxQueue: 256,
    });
    t.after(async () => {
      await g.close();
      await Promise.all(fakes.map((f) => f.close()));
      redis.stop();
    });
    assert.equal((await health(g)).redis?.status, 'up');
    await jobRuns(g);

    const total = 240;
    const killAt = 60;
    let sent = 0;
    let killed: Promise<void> | undefined;
    const failures: string[] = [];
    const answered: number[] = [];
    // 24 clients, each asking again as soon as answered; Redis is killed once `killAt` are answered.
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        while (sent < total) {
          const i = sent++;
          try {
            const res = await fetch(g.url + '/v1/chat/completions', {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              // Each its own question, so the answer cache (in Redis) never stands in for the pool.
              body: JSON.stringify(chatBody({ text: `question ${i}` })),
              // Far above an answer's time here: reaching it means a request hung.
              signal: AbortSignal.timeout(20_000),
            });
            const body = (await res.json()) as { choices?: Array<{ message: { content: string } }> };
            if (res.status !== 200 || body.choices?.[0]?.message.content !== WORDS.join(''))
              failures.push(`${i}: ${res.status} ${JSON.stringify(body)}`);
          } catch (err) {
            failures.push(`${i}: ${(err as Error).message}`);
          }
          answered.push(i);
          if (answered.length === killAt) killed = redis.kill();
        }
      }),
    );
    assert.ok(killed, 'Redis was killed mid-load');
    await killed;
    assert.deepEqual(failures, [], 'every chat request answered in full with Redis gone mid-load');
    assert.equal(answered.length, total);

    const down = await eventually(
      () => health(g),
      (h) => h.redis?.status === 'down',
      '/health to say Redis is down',
    );
    assert.deepEqual([down.code, down.status], [200, 'healthy'], 'Redis down is no reason to take glimpse out');
    assert.match(down.redis?.note ?? '', /jobs_unavailable/);
    const refused = await submitJob(g);
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'jobs_unavailable');
    assert.ok(refused.headers.get('retry-after'), 'with a Retry-After');

    redis = await startRedis({ port: redis.port });
    await eventually(
      () => health(g),
      (h) => h.redis?.status === 'up',
      '/health to say Redis is back',
    );
    await jobRuns(g);
  },
);
