/**
 * Sampling settings beyond temperature and top_p (OpenAI's presence/frequency penalties; vLLM's
 * top_k, min_p, repetition_penalty): validated, passed to upstream servers only when set to
 * something other than neutral, and part of the answer cache's key. (The embedded engine applies
 * them itself: test/embedded/engine.test.ts.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';

let vllm: FakeVllm;
let g: RunningGlimpse;
before(async () => {
  vllm = await startFakeVllm();
  g = await startGlimpse({
    engine: 'upstream',
    upstream: [vllm.url],
    upstreamModel: vllm.model,
    upstreamHealthInterval: 0,
  });
});
after(async () => {
  await g?.close();
  await vllm?.close();
});

const chat = (extra: object) =>
  fetch(g.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Describe a sunset.' }], max_tokens: 8, ...extra }),
  });

test('penalties, top_k, min_p and repetition_penalty reach the upstream as vLLM names them', async () => {
  const res = await chat({
    presence_penalty: 0.5,
    frequency_penalty: -0.25,
    top_k: 40,
    min_p: 0.05,
    repetition_penalty: 1.1,
  });
  assert.equal(res.status, 200);
  const sent = vllm.lastChatBody();
  assert.deepEqual(
    {
      presence_penalty: sent.presence_penalty,
      frequency_penalty: sent.frequency_penalty,
      top_k: sent.top_k,
      min_p: sent.min_p,
      repetition_penalty: sent.repetition_penalty,
    },
    { presence_penalty: 0.5, frequency_penalty: -0.25, top_k: 40, min_p: 0.05, repetition_penalty: 1.1 },
  );
});

test("neutral values and nulls are not sent (servers that do not know vLLM's extras never see them)", async () => {
  await chat({ presence_penalty: 0, frequency_penalty: null, top_k: -1, min_p: 0, repetition_penalty: 1 });
  const sent = vllm.lastChatBody();
  for (const k of ['presence_penalty', 'frequency_penalty', 'top_k', 'min_p', 'repetition_penalty'])
    assert.equal(k in sent, false, k);
});

test('out-of-range values are 400 invalid_request naming the field', async () => {
  for (const [field, value] of [
    ['presence_penalty', 2.5],
    ['frequency_penalty', -3],
    ['top_k', 1.5],
    ['min_p', 1.2],
    ['repetition_penalty', 0],
    ['repetition_penalty', 3],
  ] as const) {
    const res = await chat({ [field]: value });
    assert.equal(res.status, 400, `${field}=${value}`);
    const err = ((await res.json()) as { error: { code: string; param: string } }).error;
    assert.deepEqual([err.code, err.param], ['invalid_request', field]);
  }
});

test('they are part of the cache key: a greedy answer is reused only with the same settings', async () => {
  const cache = async (extra: object) => (await chat({ temperature: 0, ...extra })).headers.get('x-glimpse-cache');
  assert.equal(await cache({ top_k: 5 }), 'miss');
  assert.equal(await cache({ top_k: 5 }), 'hit');
  assert.equal(await cache({ top_k: 6 }), 'miss');
  assert.equal(await cache({ top_k: 5, repetition_penalty: 1.2 }), 'miss');
});
