/**
 * Job webhooks against a real redis-server and a real HTTP receiver on loopback: the signed event
 * verified with the Standard Webhooks reference library, retries with one webhook-id, answers
 * that end delivery, every way a job ends, SSRF refusals (no connection made), and a delivery cut
 * short by a stopping instance made again by the instance that takes the job over.
 */
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { hasRedis, redisPerSuite } from '../helpers/redis.js';
import { sample } from '../helpers/metrics.js';
import { pngBomb } from '../images/fixtures.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  received: Received[];
  /** The status for the n-th delivery (0-based); 'hang' never answers. */
  answer: (n: number) => number | 'hang';
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const r: Receiver = { url: '', received, answer: () => 204, close: async () => {} };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const n = received.push({ headers: req.headers, body }) - 1;
      const status = r.answer(n);
      if (status !== 'hang') res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/glimpse`;
  r.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return r;
}

interface Job {
  id: string;
  status: string;
  error?: { code: string };
  webhook?: { url: string; status: string; attempts: number; error?: string };
}

const SECRET = 'whsec_' + randomBytes(24).toString('base64');
const ask = (extra: object = {}) => ({
  max_tokens: 3,
  messages: [{ role: 'user', content: 'Describe a sunset.' }],
  ...extra,
});

describe(
  'job webhooks',
  { skip: hasRedis ? false : 'redis-server not installed (Debian package redis-server)' },
  () => {
    const suite = redisPerSuite<RunningGlimpse>({ before, after, beforeEach, afterEach });
    const { servers } = suite;
    let receiver: Receiver;
    beforeEach(async () => {
      receiver = await startReceiver();
    });
    afterEach(async () => receiver.close());

    async function instance(jobs: Record<string, unknown> = {}): Promise<RunningGlimpse> {
      const g = await startGlimpse({
        engine: 'simulated',
        simulated: { ttftMs: 1, tokensPerSecond: 500 },
        cache: { enabled: false },
        redisUrl: suite.redis().url,
        jobs: { workers: 1, webhookSecret: SECRET, webhookAllowPrivateNetworks: true, webhookBackoffMs: 20, ...jobs },
      });
      servers.push(g);
      return g;
    }
    const submit = (g: RunningGlimpse, body: object) =>
      fetch(g.url + '/v1/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const get = async (g: RunningGlimpse, id: string) => (await fetch(g.url + '/v1/jobs/' + id)).json() as Promise<Job>;
    async function settled(g: RunningGlimpse, id: string, ms = 10_000): Promise<Job> {
      const end = Date.now() + ms;
      for (;;) {
        const j = await get(g, id);
        if (j.webhook && j.webhook.status !== 'pending') return j;
        assert.ok(Date.now() < end, `webhook still pending: ${JSON.stringify(j)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    const verify = (r: Received) =>
      new Webhook(SECRET).verify(r.body, r.headers as Record<string, string>) as {
        id: string;
        object: string;
        type: string;
        data: Job & { result?: { choices: Array<{ message: { content: string } }> } };
      };

    test('a finished job POSTs a job.succeeded event that a Standard Webhooks verifier accepts', async () => {
      const g = await instance();
      const res = await submit(g, ask({ webhook: receiver.url }));
      assert.equal(res.status, 202);
      const job = (await res.json()) as Job;
      assert.deepEqual(job.webhook, { url: receiver.url, status: 'pending', attempts: 0 });
      const done = await settled(g, job.id);
      assert.deepEqual(done.webhook, { url: receiver.url, status: 'delivered', attempts: 1 });
      assert.equal(receiver.received.length, 1);
      const [delivery] = receiver.received;
      assert.equal(delivery!.headers['content-type'], 'application/json');
      const event = verify(delivery!);
      assert.equal(event.type, 'job.succeeded');
      assert.equal(event.object, 'event');
      assert.equal(event.id, delivery!.headers['webhook-id']);
      assert.equal(event.data.id, job.id);
      assert.equal(event.data.status, 'succeeded');
      assert.ok(event.data.result!.choices[0]!.message.content.length > 0, 'the answer is in the event');
      // A tampered body fails verification (the signature covers it).
      assert.throws(() =>
        new Webhook(SECRET).verify(
          delivery!.body.replace('succeeded', 'failed'),
          delivery!.headers as Record<string, string>,
        ),
      );
      const metrics = await fetch(g.url + '/metrics').then((r) => r.text());
      assert.equal(sample(metrics, 'glimpse_jobs_webhooks_total', { outcome: 'delivered' }), 1);
    });

    test('a secret without the whsec_ prefix signs the same way; the request is dropped once answered', async () => {
      const plain = randomBytes(32).toString('base64');
      const g = await instance({ webhookSecret: plain });
      const job = (await (await submit(g, ask({ webhook: receiver.url }))).json()) as Job;
      await settled(g, job.id);
      const [delivery] = receiver.received;
      const event = new Webhook(plain).verify(delivery!.body, delivery!.headers as Record<string, string>) as {
        type: string;
      };
      assert.equal(event.type, 'job.succeeded');
      const stored = await suite.admin().hgetall(`glimpse:jobs:job:${job.id}`);
      assert.equal(stored.body, undefined, 'the request is dropped once answered');
    });

    test('5xx and 429 are retried with the same webhook-id until delivered; a 400 ends delivery at once', async () => {
      const g = await instance();
      receiver.answer = (n) => [503, 429, 200][n] ?? 200;
      const first = (await (await submit(g, ask({ webhook: receiver.url }))).json()) as Job;
      const done = await settled(g, first.id);
      assert.deepEqual(done.webhook, { url: receiver.url, status: 'delivered', attempts: 3 });
      assert.equal(
        new Set(receiver.received.map((r) => r.headers['webhook-id'])).size,
        1,
        'one event, one id, however many tries',
      );
      for (const r of receiver.received) verify(r);

      receiver.received.length = 0;
      receiver.answer = () => 400;
      const second = (await (await submit(g, ask({ webhook: receiver.url }))).json()) as Job;
      const refused = await settled(g, second.id);
      assert.equal(refused.webhook?.status, 'failed');
      assert.equal(refused.webhook?.attempts, 1);
      assert.match(refused.webhook?.error ?? '', /HTTP 400/);
      assert.equal(receiver.received.length, 1);
    });

    test('attempts are bounded: a receiver that keeps failing gets jobs.webhookMaxAttempts tries', async () => {
      const g = await instance({ webhookMaxAttempts: 3 });
      receiver.answer = () => 500;
      const job = (await (await submit(g, ask({ webhook: receiver.url }))).json()) as Job;
      const done = await settled(g, job.id);
      assert.deepEqual(
        { status: done.webhook?.status, attempts: done.webhook?.attempts },
        { status: 'failed', attempts: 3 },
      );
      assert.equal(receiver.received.length, 3);
      assert.equal(
        sample(await fetch(g.url + '/metrics').then((r) => r.text()), 'glimpse_jobs_webhooks_total', {
          outcome: 'failed',
        }),
        1,
      );
    });

    test('a failed job and a job cancelled before it ran are announced too', async () => {
      const g = await instance();
      const bomb = `data:image/png;base64,${pngBomb(60000, 60000).toString('base64')}`;
      const failing = (await (
        await submit(g, {
          webhook: receiver.url,
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
      await settled(g, failing.id);
      const failed = verify(receiver.received[0]!);
      assert.equal(failed.type, 'job.failed');
      assert.equal(failed.data.error?.code, 'image_too_many_pixels');

      // No worker yet: the job waits, is cancelled, and the worker that later reads it announces that.
      const acceptor = await instance({ workers: 0 });
      const queued = (await (await submit(acceptor, ask({ webhook: receiver.url }))).json()) as Job;
      // (The instance above with a worker would take it; stop it first.)
      await servers.shift()!.close();
      assert.equal(
        ((await (await fetch(acceptor.url + '/v1/jobs/' + queued.id, { method: 'DELETE' })).json()) as Job).status,
        'cancelled',
      );
      await instance();
      await settled(acceptor, queued.id);
      const cancelled = verify(receiver.received.at(-1)!);
      assert.equal(cancelled.type, 'job.cancelled');
      assert.equal(cancelled.data.id, queued.id);
    });

    test('webhook URLs are checked: bad ones get 400 at submission; a name resolving to loopback is refused without connecting', async () => {
      const strict = await instance({ webhookAllowPrivateNetworks: false });
      for (const [webhook, code] of [
        ['ftp://example.com/hook', 'invalid_webhook_url'],
        ['not a url', 'invalid_webhook_url'],
        [42, 'invalid_webhook_url'],
        ['https://user:pw@example.com/hook', 'invalid_webhook_url'],
        [receiver.url, 'webhook_url_forbidden'],
        ['http://169.254.169.254/latest/meta-data', 'webhook_url_forbidden'],
        ['http://[::ffff:127.0.0.1]/hook', 'webhook_url_forbidden'],
      ] as const) {
        const res = await submit(strict, ask({ webhook }));
        assert.equal(res.status, 400, String(webhook));
        const body = (await res.json()) as { error: { code: string; param: string } };
        assert.deepEqual([body.error.code, body.error.param], [code, 'webhook'], String(webhook));
      }
      assert.equal(await suite.admin().xlen('glimpse:jobs:stream'), 0, 'nothing was queued');

      // "localhost" passes the submission check (it is a name) and is refused when resolved.
      const sneaky = receiver.url.replace('127.0.0.1', 'localhost');
      const job = (await (await submit(strict, ask({ webhook: sneaky }))).json()) as Job;
      const done = await settled(strict, job.id);
      assert.equal(done.status, 'succeeded');
      assert.equal(done.webhook?.status, 'failed');
      assert.match(
        done.webhook?.error ?? '',
        /webhook_url_forbidden: localhost resolves to an address glimpse may not reach \(loopback\)/,
      );
      assert.doesNotMatch(
        done.webhook?.error ?? '',
        /127\.0\.0\.1|::1/,
        'the resolved address is not shown to the job owner',
      );
      assert.equal(receiver.received.length, 0, 'no connection was made');

      // Link-local (cloud metadata) stays refused even where private networks are allowed.
      const open = await instance();
      const res = await submit(open, ask({ webhook: 'http://169.254.169.254/' }));
      assert.equal(res.status, 400);
    });

    test('a receiver that hangs holds only its own job: the worker runs the next job meanwhile', async () => {
      const g = await instance({ webhookTimeoutMs: 60_000 });
      receiver.answer = () => 'hang';
      const slow = (await (await submit(g, ask({ webhook: receiver.url }))).json()) as Job;
      const end = Date.now() + 10_000;
      while (receiver.received.length === 0) {
        assert.ok(Date.now() < end, 'the delivery never came');
        await new Promise((r) => setTimeout(r, 20));
      }
      const next = (await (await submit(g, ask())).json()) as Job;
      for (;;) {
        const j = await get(g, next.id);
        if (j.status === 'succeeded') break;
        assert.ok(Date.now() < end, `the next job did not run while a delivery hung: ${JSON.stringify(j)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal((await get(g, slow.id)).webhook?.status, 'pending', 'the hung delivery is still under way');
    });

    test('a delivery cut short by a stopping instance is made again by the instance that takes the job over', async () => {
      const a = await instance({ claimIdleSeconds: 0.5 });
      receiver.answer = (n) => (n === 0 ? 'hang' : 204);
      const job = (await (await submit(a, ask({ webhook: receiver.url }))).json()) as Job;
      const end = Date.now() + 10_000;
      while (receiver.received.length === 0) {
        assert.ok(Date.now() < end, 'first delivery never came');
        await new Promise((r) => setTimeout(r, 20));
      }
      await servers.splice(servers.indexOf(a), 1)[0]!.close();
      const b = await instance({ claimIdleSeconds: 0.5 });
      const done = await settled(b, job.id);
      assert.equal(done.webhook?.status, 'delivered');
      assert.equal(receiver.received.length, 2);
      assert.equal(
        receiver.received[0]!.headers['webhook-id'],
        receiver.received[1]!.headers['webhook-id'],
        'the same event, so the receiver can drop the repeat',
      );
      assert.equal(await suite.admin().xlen('glimpse:jobs:stream'), 0, 'the entry is acknowledged once delivered');
    });
  },
);

test('a webhook secret that is not base64 key material is refused at start, naming the setting', async () => {
  const { loadConfig } = await import('../../src/config/index.js');
  for (const bad of ['short', 'not base64 at all, has spaces and is long enough']) {
    assert.throws(
      () => loadConfig({ env: { GLIMPSE_JOBS_WEBHOOK_SECRET: bad } }),
      (err: Error) => {
        assert.match(err.message, /GLIMPSE_JOBS_WEBHOOK_SECRET/);
        assert.ok(!err.message.includes(bad), 'the secret is not echoed');
        assert.match(err.message, /value not shown/);
        return true;
      },
    );
  }
  assert.equal(loadConfig({ env: { GLIMPSE_JOBS_WEBHOOK_SECRET: SECRET } }).jobs.webhookSecret, SECRET);
});
