import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { isGlimpseError } from '../../src/core/index.js';
import { memoryCounter, Quotas, quotasEnabled } from '../../src/auth/index.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { hasRedis, startRedis, type RunningRedis } from '../helpers/redis.js';

/** Counting windows are whole minutes: start a burst of requests well inside one. */
async function awayFromMinuteEdge(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 5_000) await new Promise((r) => setTimeout(r, left + 50));
}

const rejectsQuota = (p: Promise<unknown>, re: RegExp) =>
  assert.rejects(p, (err: unknown) => {
    assert.ok(isGlimpseError(err), String(err));
    assert.equal(err.code, 'quota_exceeded');
    assert.equal(err.status, 429);
    assert.match(err.message, re);
    return true;
  });

describe('Quotas (one-minute windows, clock injected)', () => {
  let t = Date.UTC(2026, 10, 22, 12, 0, 0);
  const now = () => t;
  const quotas = () =>
    new Quotas(
      { requestsPerMinute: 2, tokensPerMinute: 100, byKey: { big: { requestsPerMinute: 5 } } },
      memoryCounter(now),
      undefined,
      now,
    );

  test('a key may start requestsPerMinute requests; the next is refused with Retry-After until the minute turns', async () => {
    const q = quotas();
    t += 15_000;
    assert.deepEqual(await q.admit('alice'), {
      'x-ratelimit-limit-tokens': '100',
      'x-ratelimit-remaining-tokens': '100',
      'x-ratelimit-reset-tokens': '45s',
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '1',
      'x-ratelimit-reset-requests': '45s',
    });
    await q.admit('alice');
    await rejectsQuota(
      q.admit('alice'),
      /'alice' has used its 2 requests per minute \(quotas\.requestsPerMinute\); the next minute starts in 45 s/,
    );
    await assert.rejects(q.admit('alice'), (err: unknown) => isGlimpseError(err) && err.retryAfterSeconds === 45);
    await q.admit('bob'); // another key has its own count
    t += 45_000;
    await q.admit('alice');
  });

  test("byKey raises one key's limit and leaves the others at the default", async () => {
    const q = quotas();
    for (let i = 0; i < 5; i++) await q.admit('big');
    await rejectsQuota(q.admit('big'), /5 requests/);
    assert.deepEqual(q.limitsFor('big'), { requestsPerMinute: 5, tokensPerMinute: 100 });
    assert.deepEqual(q.limitsFor('constructor'), { requestsPerMinute: 2, tokensPerMinute: 100 });
  });

  test("tokens spent in a minute refuse the key's next request once they reach tokensPerMinute", async () => {
    const q = quotas();
    await q.admit('carol');
    await q.spend('carol', 60);
    await q.admit('carol');
    await q.spend('carol', 40);
    await rejectsQuota(q.admit('carol'), /100 tokens per minute \(quotas\.tokensPerMinute\)/);
    t += 60_000;
    await q.admit('carol');
  });

  test('a counter that fails lets requests through and reports the error', async () => {
    const errors: Error[] = [];
    const broken = {
      add: async () => Promise.reject(new Error('redis down')),
      get: async () => Promise.reject(new Error('redis down')),
      close: async () => {},
    };
    const q = new Quotas({ requestsPerMinute: 1, tokensPerMinute: 1, byKey: {} }, broken, (e) => errors.push(e), now);
    await q.admit('dave');
    await q.admit('dave');
    await q.spend('dave', 5);
    assert.ok(errors.length >= 3);
  });

  test('no limit set anywhere means quotas are off', () => {
    assert.equal(quotasEnabled({ requestsPerMinute: 0, tokensPerMinute: 0, byKey: {} }), false);
    assert.equal(
      quotasEnabled({ requestsPerMinute: 0, tokensPerMinute: 0, byKey: { x: { tokensPerMinute: 9 } } }),
      true,
    );
  });
});

describe('quotas over HTTP and WebSocket', () => {
  let g: RunningGlimpse;
  before(async () => {
    g = await startGlimpse({
      engine: 'simulated',
      apiKeys: 'alice:sk-alice-0001,bob:sk-bob-00002,carol:sk-carol-0003',
      simulated: { ttftMs: 1, tokensPerSecond: 2000, answerTokens: 4 },
      cache: { enabled: false },
      quotas: {
        requestsPerMinute: 2,
        byKey: { bob: { requestsPerMinute: 10 }, carol: { requestsPerMinute: 10, tokensPerMinute: 5 } },
      },
    });
  });
  after(() => g.close());

  const chat = (key: string) =>
    fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });

  test('the third request of a minute gets 429 quota_exceeded with Retry-After, as the OpenAI SDK sees it; other keys go on', async () => {
    await awayFromMinuteEdge();
    const first = await chat('sk-alice-0001');
    assert.equal(first.status, 200);
    // The key's standing, as OpenAI's API reports it.
    assert.equal(first.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '1');
    assert.match(first.headers.get('x-ratelimit-reset-requests') ?? '', /^\d+s$/);
    const streamed = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-alice-0001' },
      body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(streamed.status, 200);
    assert.equal(streamed.headers.get('x-ratelimit-remaining-requests'), '0', 'an SSE answer carries the headers too');
    await streamed.text();
    const sdk = new OpenAI({ baseURL: g.url + '/v1', apiKey: 'sk-alice-0001', maxRetries: 0 });
    await assert.rejects(
      sdk.chat.completions.create({ model: 'glimpse-simulated', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.RateLimitError, String(err));
        assert.equal(err.code, 'quota_exceeded');
        const retry = Number(err.headers?.get('retry-after'));
        assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
        assert.equal(err.headers?.get('x-ratelimit-remaining-requests'), '0');
        return true;
      },
    );
    for (let i = 0; i < 3; i++) assert.equal((await chat('sk-bob-00002')).status, 200, 'bob has his own, larger quota');
  });

  test('a key whose minute of tokens is spent is refused, on WebSocket too', async () => {
    await awayFromMinuteEdge();
    const first = await chat('sk-carol-0003');
    assert.equal(first.status, 200);
    assert.ok((await first.json()).usage.total_tokens >= 5, 'one answer spends the 5-token minute');
    const res = await chat('sk-carol-0003');
    assert.equal(res.status, 429);
    assert.match((await res.json()).error.message, /'carol' has used its 5 tokens per minute/);
    const ws = new WebSocket(g.url.replace('http', 'ws') + '/ws/infer?api_key=sk-carol-0003');
    const reply = await new Promise<{ type: string; error?: { code: string; status: number } }>((resolve, reject) => {
      ws.on('open', () => ws.send(JSON.stringify({ type: 'request', id: 'q1', prompt: 'hi' })));
      ws.on('message', (d) => resolve(JSON.parse(String(d))));
      ws.on('error', reject);
    });
    ws.close();
    assert.equal(reply.type, 'error');
    assert.deepEqual([reply.error?.code, reply.error?.status], ['quota_exceeded', 429]);
  });
});

test('quotas set without API keys are off (nothing to count against), and the server still serves', async () => {
  const g = await startGlimpse({
    engine: 'simulated',
    simulated: { ttftMs: 1, tokensPerSecond: 2000, answerTokens: 2 },
    quotas: { requestsPerMinute: 1 },
  });
  try {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(g.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(res.status, 200);
    }
  } finally {
    await g.close();
  }
});

describe(
  'quotas shared through Redis by two glimpse instances',
  { skip: hasRedis ? false : 'redis-server not installed (Debian package redis-server)' },
  () => {
    let redis: RunningRedis;
    let a: RunningGlimpse;
    let b: RunningGlimpse;
    before(async () => {
      redis = await startRedis();
      const flags = {
        engine: 'simulated',
        apiKeys: 'alice:sk-alice-0001',
        simulated: { ttftMs: 1, tokensPerSecond: 2000, answerTokens: 2 },
        cache: { enabled: false },
        redisUrl: redis.url,
        quotas: { requestsPerMinute: 2 },
      };
      a = await startGlimpse(flags);
      b = await startGlimpse(flags);
    });
    after(async () => {
      await a?.close();
      await b?.close();
      redis?.stop();
    });

    test("one request on each instance spends the key's two; the third, on either, is refused", async () => {
      await awayFromMinuteEdge();
      const chat = (g: RunningGlimpse) =>
        fetch(g.url + '/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer sk-alice-0001' },
          body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
        });
      assert.equal((await chat(a)).status, 200);
      assert.equal((await chat(b)).status, 200);
      const third = await chat(a);
      assert.equal(third.status, 429);
      assert.equal((await third.json()).error.code, 'quota_exceeded');
    });
  },
);
