import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAnswerCache } from '../../src/cache/index.js';
import { answer, cacheConfig, fakeImage, request } from './helpers.js';

test('a deterministic request misses, then hits with the stored answer', async () => {
  const cache = createAnswerCache(cacheConfig());
  const req = request();
  const first = await cache.lookup(req);
  assert.equal(first.status, 'miss');
  assert.ok(first.key);
  await cache.set(first.key, answer('a cat'), req);
  const second = await cache.lookup(request());
  assert.equal(second.status, 'hit');
  assert.equal(second.answer?.text, 'a cat');
  assert.deepEqual(second.answer?.usage, { promptTokens: 10, completionTokens: 3 });
});

test('sampling requests bypass the cache unless cacheNondeterministic is set; a fixed seed counts as deterministic', async () => {
  const cache = createAnswerCache(cacheConfig());
  assert.equal(cache.keyFor(request({ temperature: 0.7 })), null);
  assert.equal((await cache.lookup(request({ temperature: 0.7 }))).status, 'bypass');
  assert.notEqual(cache.keyFor(request({ temperature: 0.7, seed: 42 })), null);
  const loose = createAnswerCache(cacheConfig({ cacheNondeterministic: true }));
  assert.notEqual(loose.keyFor(request({ temperature: 0.7 })), null);
});

test('a disabled cache bypasses everything', async () => {
  const cache = createAnswerCache(cacheConfig({ enabled: false }));
  assert.equal(cache.backend, 'off');
  assert.equal((await cache.lookup(request())).status, 'bypass');
});

test('the key changes with model, prompt text, image pixels, sampling params and API key', () => {
  const cache = createAnswerCache(cacheConfig());
  const base = cache.keyFor(request())!;
  assert.equal(cache.keyFor(request()), base, 'same request, same key (the request id is not part of it)');
  const variants = [
    request({ model: 'other' }),
    request({ text: 'Describe it.' }),
    request({ images: [fakeImage('bb')] }),
    request({ images: [fakeImage('aa'), fakeImage('aa')] }),
    request({ maxTokens: 65 }),
    request({ seed: 1 }),
    request({ keyId: 'key-1' }),
  ];
  const keys = variants.map((r) => cache.keyFor(r));
  assert.equal(new Set([base, ...keys]).size, variants.length + 1);
});

test('answers never cross API keys', async () => {
  const cache = createAnswerCache(cacheConfig());
  const alice = request({ keyId: 'alice' });
  const k = cache.keyFor(alice)!;
  await cache.set(k, answer('for alice'), alice);
  assert.equal((await cache.lookup(request({ keyId: 'alice' }))).status, 'hit');
  assert.equal((await cache.lookup(request({ keyId: 'bob' }))).status, 'miss');
  assert.equal((await cache.lookup(request())).status, 'miss');
});

test('unresolved images make a request uncacheable, and cancelled answers are not stored', async () => {
  const cache = createAnswerCache(cacheConfig());
  const req = request();
  const part = req.messages[0]!.content[0]!;
  if (part.type === 'image') delete part.resolved;
  assert.equal(cache.keyFor(req), null);
  const ok = request();
  const k = cache.keyFor(ok)!;
  await cache.set(k, { ...answer('half'), finishReason: 'cancelled' });
  assert.equal(await cache.get(k), undefined);
});

test('the memory LRU is bounded by bytes and evicts the least recently used answer first', async () => {
  const big = 'x'.repeat(4000); // ~8 KB each as stored
  const cache = createAnswerCache(cacheConfig({ maxBytes: 20_000 }));
  const keys = ['a', 'b', 'c'].map((t) => cache.keyFor(request({ text: t }))!);
  await cache.set(keys[0]!, answer(big));
  await cache.set(keys[1]!, answer(big));
  assert.ok(await cache.get(keys[0]!), 'touch a: b is now the least recent');
  await cache.set(keys[2]!, answer(big));
  assert.ok(await cache.get(keys[0]!));
  assert.equal(await cache.get(keys[1]!), undefined, 'b was evicted to make room');
  assert.ok(await cache.get(keys[2]!));
  // one answer larger than the whole budget is simply not kept
  const huge = cache.keyFor(request({ text: 'huge' }))!;
  await cache.set(huge, answer('y'.repeat(30_000)));
  assert.equal(await cache.get(huge), undefined);
});

test('near-duplicate reuse is off by default and, when on, matches within the Hamming distance only', async () => {
  const stored = request({ images: [fakeImage('aa', '0000000000000000')] });
  const nearby = request({ images: [fakeImage('ab', '0000000000000007')] }); // 3 bits away
  const far = request({ images: [fakeImage('ac', '00000000000000ff')] }); // 8 bits away

  const strict = createAnswerCache(cacheConfig());
  await strict.set(strict.keyFor(stored)!, answer('a dog'), stored);
  assert.equal((await strict.lookup(nearby)).status, 'miss');

  const loose = createAnswerCache(cacheConfig({ nearDuplicateDistance: 4 }));
  await loose.set(loose.keyFor(stored)!, answer('a dog'), stored);
  const hit = await loose.lookup(nearby);
  assert.equal(hit.status, 'hit');
  assert.equal(hit.answer?.text, 'a dog');
  assert.equal(hit.distance, 3);
  assert.equal((await loose.lookup(far)).status, 'miss');
  // a different prompt over the near image is not a near duplicate
  assert.equal(
    (await loose.lookup(request({ text: 'Count the legs.', images: [fakeImage('ab', '0000000000000007')] }))).status,
    'miss',
  );
  // nor is the same image under another API key
  assert.equal(
    (await loose.lookup(request({ keyId: 'k2', images: [fakeImage('ab', '0000000000000007')] }))).status,
    'miss',
  );
});

test('stats count hits, near hits, misses, bypasses and stores', async () => {
  const cache = createAnswerCache(cacheConfig({ nearDuplicateDistance: 2 }));
  const req = request({ images: [fakeImage('s1', '00000000000000f0')] });
  const miss = await cache.lookup(req);
  await cache.set(miss.key!, answer('x'), req);
  await cache.lookup(req);
  await cache.lookup(request({ images: [fakeImage('s2', '00000000000000f1')] }));
  await cache.lookup(request({ temperature: 1 }));
  assert.deepEqual(cache.stats(), { hits: 2, nearHits: 1, misses: 1, bypasses: 1, stores: 1, errors: 0 });
});
