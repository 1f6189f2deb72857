/**
 * Async jobs, the same tests against both stores: embedded (a journal under the state directory)
 * and Redis Streams (a real redis-server). Submit, poll, result; ownership; cancel before and while
 * running; a worker killed mid-job (SIGKILL) and the job run again (by another instance with Redis,
 * by the restarted one without); a graceful stop handing the job back; limits.
 */
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bench/util.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { hasRedis, redisPerSuite } from '../helpers/redis.js';
import { pngBomb } from '../images/fixtures.js';

const entry = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

interface Job {
  id: string;
  status: string;
  attempts: number;
  result?: { object: string; choices: Array<{ message: { content: string } }>; usage: { completion_tokens: number } };
  error?: { code: string; message: string };
}

const message = (maxTokens: number) => ({
  max_tokens: maxTokens,
  messages: [{ role: 'user', content: 'Describe a sunset.' }],
});

for (const store of ['embedded', 'redis'] as const) {
  describe(
    `async jobs (${store} store)`,
    { skip: store === 'redis' && !hasRedis ? 'redis-server not installed (Debian package redis-server)' : false },
    () => {
      const suite = redisPerSuite<RunningGlimpse>({
        before: store === 'redis' ? before : () => {},
        after: store === 'redis' ? after : () => {},
        beforeEach: store === 'redis' ? beforeEach : () => {},
        afterEach,
      });
      const { servers } = suite;
      // Where the jobs live: Redis, or one state directory per test that its instances take in turn.
      let stateDir = '';
      beforeEach(() => {
        stateDir = mkdtempSync(join(tmpdir(), 'glimpse-jobs-'));
      });
      afterEach(() => rmSync(stateDir, { recursive: true, force: true }));
      const where = () => (store === 'redis' ? { redisUrl: suite.redis().url } : { stateDir });
      const whereEnv = () =>
        store === 'redis' ? { GLIMPSE_REDIS_URL: suite.redis().url } : { GLIMPSE_STATE_DIR: stateDir };

      /** A glimpse on the simulated engine at `tokensPerSecond`, with its job settings. */
      async function instance(
        jobs: Record<string, unknown>,
        extra: Record<string, unknown> = {},
      ): Promise<RunningGlimpse> {
        const g = await startGlimpse({
          engine: 'simulated',
          simulated: { ttftMs: 1, tokensPerSecond: 200 },
          cache: { enabled: false },
          ...where(),
          jobs,
          ...extra,
        });
        servers.push(g);
        return g;
      }
      /** Stop an instance before the next takes its store (an embedded store has one owner at a time). */
      async function stop(g: RunningGlimpse): Promise<void> {
        servers.splice(servers.indexOf(g), 1);
        await g.close();
      }
      const backlog = async (g: RunningGlimpse) =>
        Number(/^glimpse_jobs_backlog (\S+)$/m.exec(await (await fetch(g.url + '/metrics')).text())?.[1]);
      const submit = (g: RunningGlimpse, body: object, headers: Record<string, string> = {}) =>
        fetch(g.url + '/v1/jobs', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(body),
        });
      const get = async (g: RunningGlimpse, id: string, headers: Record<string, string> = {}) =>
        (await fetch(g.url + '/v1/jobs/' + id, { headers })).json() as Promise<Job>;
      async function until(g: RunningGlimpse, id: string, want: (j: Job) => boolean, ms = 10_000): Promise<Job> {
        const end = Date.now() + ms;
        for (;;) {
          const j = await get(g, id);
          if (want(j)) return j;
          if (Date.now() > end) throw new Error(`job ${id} stayed ${JSON.stringify(j)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }

      test('a submitted job answers 202 with its id at once, runs, and its chat.completion can be read back', async () => {
        const g = await instance({ workers: 1 });
        const res = await submit(g, message(6));
        assert.equal(res.status, 202);
        const job = (await res.json()) as Job;
        assert.match(job.id, /^job_[0-9a-f]{24}$/);
        assert.equal(res.headers.get('location'), `/v1/jobs/${job.id}`);
        const done = await until(g, job.id, (j) => j.status === 'succeeded');
        assert.equal(done.attempts, 1);
        assert.equal(done.result?.object, 'chat.completion');
        assert.equal(done.result?.usage.completion_tokens, 6);
        assert.ok(done.result!.choices[0]!.message.content.length > 0);
        if (store === 'redis') {
          assert.equal(await suite.admin().xlen('glimpse:jobs:stream'), 0, 'the stream holds only work still to do');
          assert.equal(
            await suite.admin().hexists(`glimpse:jobs:job:${job.id}`, 'body'),
            0,
            'the request is dropped once answered',
          );
          assert.ok(
            (await suite.admin().ttl(`glimpse:jobs:job:${job.id}`)) > 86_000,
            'the answer stays readable for resultTtlSeconds',
          );
        }
        const metrics = await (await fetch(g.url + '/metrics')).text();
        assert.match(metrics, /^glimpse_jobs_ended_total\{outcome="succeeded"\} 1$/m);
        assert.match(metrics, /^glimpse_jobs_running 0$/m);
        assert.match(metrics, /^glimpse_jobs_backlog 0$/m);
        if (existsSync('/usr/bin/promtool')) {
          const lint = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
          assert.equal(lint.status, 0, lint.stdout + lint.stderr);
        }
      });

      test('a bad body or an unknown model is refused at submission, not as a failed job later', async () => {
        const g = await instance({ workers: 0 });
        const empty = await submit(g, { messages: [] });
        assert.equal(empty.status, 400);
        assert.equal(((await empty.json()) as { error: { code: string } }).error.code, 'empty_messages');
        const unknown = await submit(g, { ...message(4), model: 'no-such-model' });
        assert.equal(unknown.status, 404);
        assert.equal(await backlog(g), 0);
      });

      test('with API keys, a job belongs to its key: another key gets 404 for it', async () => {
        const g = await instance({ workers: 1 }, { apiKeys: 'alice:sk-alice-0001,bob:sk-bob-000002' });
        const job = (await (await submit(g, message(3), { authorization: 'Bearer sk-alice-0001' })).json()) as Job;
        const mine = await fetch(g.url + '/v1/jobs/' + job.id, { headers: { authorization: 'Bearer sk-alice-0001' } });
        assert.equal(mine.status, 200);
        const theirs = await fetch(g.url + '/v1/jobs/' + job.id, {
          headers: { authorization: 'Bearer sk-bob-000002' },
        });
        assert.equal(theirs.status, 404);
        const cancel = await fetch(g.url + '/v1/jobs/' + job.id, {
          method: 'DELETE',
          headers: { authorization: 'Bearer sk-bob-000002' },
        });
        assert.equal(cancel.status, 404);
      });

      test('a job cancelled while queued never runs, even once a worker comes', async () => {
        const accepting = await instance({ workers: 0 });
        const job = (await (await submit(accepting, message(4))).json()) as Job;
        const cancelled = (await (
          await fetch(accepting.url + '/v1/jobs/' + job.id, { method: 'DELETE' })
        ).json()) as Job;
        assert.equal(cancelled.status, 'cancelled');
        await stop(accepting);
        const worker = await instance({ workers: 1 });
        const deadline = Date.now() + 3000;
        while ((await backlog(worker)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(await backlog(worker), 0, 'the worker took the entry and dropped it');
        const after = await get(worker, job.id);
        assert.equal(after.status, 'cancelled');
        assert.equal(after.attempts, 0);
      });

      test('a running job is stopped by DELETE within a second', async () => {
        const g = await instance({ workers: 1 }, { simulated: { ttftMs: 1, tokensPerSecond: 10 } });
        const job = (await (await submit(g, message(200))).json()) as Job; // 20 s of tokens
        await until(g, job.id, (j) => j.status === 'running');
        const asked = Date.now();
        await fetch(g.url + '/v1/jobs/' + job.id, { method: 'DELETE' });
        const done = await until(g, job.id, (j) => j.status === 'cancelled', 3000);
        assert.ok(Date.now() - asked < 2000);
        assert.equal(done.result, undefined);
      });

      test(`a worker killed mid-job (SIGKILL): ${store === 'redis' ? 'another instance takes the job over' : 'the restarted instance runs it again'} and finishes it`, async () => {
        const port = await freePort();
        const env = {
          ...process.env,
          ...whereEnv(),
          GLIMPSE_CACHE_ENABLED: 'false',
          GLIMPSE_JOBS_WORKERS: '1',
          GLIMPSE_JOBS_CLAIM_IDLE_SECONDS: '1',
          GLIMPSE_SIMULATED_TTFT_MS: '1',
          GLIMPSE_SIMULATED_TOKENS_PER_SECOND: '10',
        };
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', entry, 'serve', '--engine', 'simulated', '--port', String(port), '--log-level', 'silent'],
          { env, stdio: 'ignore' },
        );
        const exited = new Promise((r) => child.once('exit', r));
        try {
          const base = `http://127.0.0.1:${port}`;
          // Bounded by time, not by a count of tries: a fresh Node and tsx process on a loaded machine
          // takes as long as the CLI tests allow `glimpse serve` (60 s).
          const readyBy = Date.now() + 60_000;
          while (
            !(await fetch(base + '/ready').then(
              (r) => r.ok,
              () => false,
            ))
          ) {
            if (Date.now() > readyBy) throw new Error('child glimpse did not become ready');
            await new Promise((r) => setTimeout(r, 50));
          }
          const res = await fetch(base + '/v1/jobs', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(message(20)),
          });
          const job = (await res.json()) as Job;
          // Running as a client reads it: the start is on disk or in Redis, so the kill is mid-job.
          const startedBy = Date.now() + 30_000;
          while ((await get({ url: base } as RunningGlimpse, job.id)).status !== 'running') {
            if (Date.now() > startedBy) throw new Error('the child never started the job');
            await new Promise((r) => setTimeout(r, 25));
          }
          child.kill('SIGKILL');
          await exited;
          // The survivor, with fast tokens, notices the idle claim after a second and finishes the job.
          const survivor = await instance({ workers: 1, claimIdleSeconds: 1 });
          const done = await until(survivor, job.id, (j) => j.status === 'succeeded', 10_000);
          assert.equal(done.attempts, 2);
          assert.equal(done.result?.usage.completion_tokens, 20);
        } finally {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
      });

      test('an instance stopping gracefully takes no new job; a job longer than the grace period is handed back and another instance runs it', async () => {
        const leaving = await startGlimpse({
          engine: 'simulated',
          simulated: { ttftMs: 1, tokensPerSecond: 10 },
          cache: { enabled: false },
          ...where(),
          jobs: { workers: 1 },
          graceShutdownSeconds: 1,
        });
        const job = (await (await submit(leaving, message(200))).json()) as Job; // 20 s of tokens, 1 s of grace
        await until(leaving, job.id, (j) => j.status === 'running');
        await leaving.close();
        if (store === 'redis') assert.equal(await suite.admin().hget(`glimpse:jobs:job:${job.id}`, 'status'), 'queued');
        const staying = await instance({ workers: 1 });
        const done = await until(staying, job.id, (j) => j.status === 'succeeded');
        assert.equal(done.attempts, 1, 'a handed-back start does not count as a failed attempt');
      });

      test('jobs.maxQueued: the next submission gets 429 queue_full with Retry-After', async () => {
        const g = await instance({ workers: 0, maxQueued: 1 });
        assert.equal((await submit(g, message(2))).status, 202);
        const full = await submit(g, message(2));
        assert.equal(full.status, 429);
        assert.ok(full.headers.get('retry-after'));
        assert.equal(((await full.json()) as { error: { code: string } }).error.code, 'queue_full');
      });

      test('a job waits behind interactive traffic for a slot without timing out (jobs come second, not never)', async () => {
        // One slot, no interactive queue at all, a 0.3 s queue timeout, and an interactive answer that
        // holds the slot for about 1 s: the job is neither refused (queue_full) nor timed out.
        const g = await instance(
          { workers: 1 },
          {
            maxInFlight: 1,
            maxQueue: 0,
            queueTimeout: 0.3,
            simulated: { ttftMs: 1, tokensPerSecond: 20, answerTokens: 20 },
          },
        );
        const streaming = fetch(g.url + '/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...message(20), stream: true }),
        }).then((r) => r.text());
        await new Promise((r) => setTimeout(r, 100));
        const job = (await (await submit(g, message(2))).json()) as Job;
        const done = await until(g, job.id, (j) => j.status === 'succeeded' || j.status === 'failed');
        assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
        assert.match(await streaming, /\[DONE\]/);
      });

      test('a job that fails records its error code', async () => {
        const g = await instance({ workers: 1 });
        // A PNG claiming 60000x60000 pixels: refused when the worker resolves the image.
        const bomb = `data:image/png;base64,${pngBomb(60000, 60000).toString('base64')}`;
        const job = (await (
          await submit(g, {
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'image_url', image_url: { url: bomb } },
                  { type: 'text', text: 'what?' },
                ],
              },
            ],
          })
        ).json()) as Job;
        const done = await until(g, job.id, (j) => j.status === 'failed');
        assert.equal(done.error?.code, 'image_too_many_pixels');
      });
    },
  );
}
