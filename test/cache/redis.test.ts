import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createAnswerCache } from '../../src/cache/index.js';
import { answer, cacheConfig, fakeImage, request } from './helpers.js';
import { hasRedis, startRedis, type RunningRedis } from '../helpers/redis.js';
import { freePort } from '../../bench/util.js';

const skip = hasRedis
  ? false
  : 'redis-server is not installed (apt-get install redis-server) — skipping the Redis cache tests';

let redis: RunningRedis | undefined;
let url = '';

before(async () => {
  if (!hasRedis) return;
  redis = await startRedis();
  url = redis.url;
});

after(() => {
  redis?.stop();
});

test('with redisUrl set, answers are stored in Redis and shared between cache instances', { skip }, async () => {
  const a = createAnswerCache(cacheConfig({}, url));
  const b = createAnswerCache(cacheConfig({}, url));
  try {
    assert.equal(a.backend, 'redis');
    assert.equal(await a.ready(), true);
    assert.equal(await b.ready(), true);
    const req = request({ text: 'redis shared ' + Date.now() });
    const miss = await a.lookup(req);
    assert.equal(miss.status, 'miss');
    await a.set(miss.key!, answer('from redis'), req);
    const hit = await b.lookup(req);
    assert.equal(hit.status, 'hit');
    assert.equal(hit.answer?.text, 'from redis');
    assert.equal((await b.lookup({ ...req, keyId: 'other-key' })).status, 'miss');
  } finally {
    await a.close();
    await b.close();
  }
});

test('Redis entries carry the configured TTL', { skip }, async () => {
  const cache = createAnswerCache(cacheConfig({ ttlSeconds: 1 }, url));
  try {
    assert.equal(await cache.ready(), true);
    const req = request({ text: 'ttl ' + Date.now() });
    await cache.set(cache.keyFor(req)!, answer('short-lived'), req);
    assert.equal((await cache.lookup(req)).status, 'hit');
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await cache.lookup(req)).status, 'miss');
  } finally {
    await cache.close();
  }
});

test('near-duplicate reuse works through Redis too', { skip }, async () => {
  const cache = createAnswerCache(cacheConfig({ nearDuplicateDistance: 2 }, url));
  try {
    assert.equal(await cache.ready(), true);
    const text = 'near ' + Date.now();
    const stored = request({ text, images: [fakeImage('a1', 'ffff000000000000')] });
    await cache.set(cache.keyFor(stored)!, answer('near answer'), stored);
    const hit = await cache.lookup(request({ text, images: [fakeImage('a2', 'ffff000000000001')] }));
    assert.equal(hit.status, 'hit');
    assert.equal(hit.distance, 1);
  } finally {
    await cache.close();
  }
});

test('a Redis that is down costs a miss at once, never a failed or stalled request', async () => {
  const port = await freePort(); // nothing listens here
  const errors: Error[] = [];
  const cache = createAnswerCache(cacheConfig({}, `redis://127.0.0.1:${port}/0`), { onError: (e) => errors.push(e) });
  try {
    assert.equal(await cache.ready(200), false);
    const req = request();
    const started = Date.now();
    const res = await cache.lookup(req);
    assert.equal(res.status, 'miss');
    await cache.set(res.key!, answer('lost'), req);
    assert.ok(Date.now() - started < 400, 'no waiting on a Redis that is not there');
    assert.ok(errors.length > 0, 'the failure was reported');
  } finally {
    await cache.close();
  }
});

test(
  "two glimpse servers sharing one Redis: the second answers from the first one's cache (X-Glimpse-Cache: hit)",
  { skip },
  async () => {
    const { startGlimpse } = await import('../helpers/glimpse.js');
    const sharp = (await import('sharp')).default;
    const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#aa3300' } })
      .png()
      .toBuffer();
    const flags = {
      engine: 'simulated',
      simulated: { ttftMs: 0, tokensPerSecond: 10000, answerTokens: 4 },
      redisUrl: url,
    };
    const [one, two] = [await startGlimpse(flags), await startGlimpse(flags)];
    const text = 'shared ' + Date.now();
    try {
      const ask = (base: string) =>
        fetch(base + '/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            temperature: 0,
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
                  { type: 'text', text },
                ],
              },
            ],
          }),
        });
      const first = await ask(one.url);
      assert.equal(first.headers.get('x-glimpse-cache'), 'miss');
      const a = await first.json();
      await new Promise((r) => setTimeout(r, 50)); // the store is not awaited by the response
      const second = await ask(two.url);
      assert.equal(second.headers.get('x-glimpse-cache'), 'hit');
      assert.equal((await second.json()).choices[0].message.content, a.choices[0].message.content);
    } finally {
      await one.close();
      await two.close();
    }
  },
);
