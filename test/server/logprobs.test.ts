/**
 * Token log probabilities (`logprobs`, `top_logprobs`) through the OpenAI route with the openai SDK:
 * relayed from an upstream (the vLLM double sends them as vLLM does, one token per chunk) and
 * computed by the embedded engine from its own logits; refused where an engine has none.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { RED_PIXEL_PNG, startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { FIXTURE } from '../embedded/helpers.js';

const ask = (extra: object = {}) => ({
  messages: [
    {
      role: 'user' as const,
      content: [
        { type: 'image_url' as const, image_url: { url: RED_PIXEL_PNG } },
        { type: 'text' as const, text: 'What is this?' },
      ],
    },
  ],
  ...extra,
});

describe('logprobs from an upstream', () => {
  let vllm: FakeVllm;
  let g: RunningGlimpse;
  let client: OpenAI;
  before(async () => {
    vllm = await startFakeVllm({ script: () => ({ reasoning: [], content: ['A red', ' square', '.'] }) });
    g = await startGlimpse({
      engine: 'upstream',
      upstream: [vllm.url],
      upstreamModel: vllm.model,
      upstreamHealthInterval: 0,
    });
    client = new OpenAI({ baseURL: g.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await g?.close();
    await vllm?.close();
  });

  test('streamed: each chunk carries the logprobs of its tokens, top_logprobs included', async () => {
    const stream = await client.chat.completions.create({
      model: vllm.model,
      ...ask({ logprobs: true, top_logprobs: 2 }),
      stream: true,
    });
    const entries: Array<{ token: string; logprob: number; top_logprobs: Array<{ token: string }> }> = [];
    let text = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      entries.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    }
    assert.equal(text, 'A red square.');
    assert.deepEqual(
      entries.map((e) => e.token),
      ['A red', ' square', '.'],
    );
    assert.ok(entries.every((e) => e.top_logprobs.length === 2 && e.top_logprobs[0]!.token === e.token));
    assert.equal(vllm.lastChatBody().logprobs, true);
    assert.equal(vllm.lastChatBody().top_logprobs, 2);
  });

  test('whole: choices[0].logprobs.content lists every token; without logprobs it is null and nothing is asked upstream', async () => {
    const res = await client.chat.completions.create({ model: vllm.model, ...ask({ logprobs: true }) });
    assert.deepEqual(
      res.choices[0]!.logprobs!.content!.map((e) => [e.token, e.top_logprobs.length]),
      [
        ['A red', 0],
        [' square', 0],
        ['.', 0],
      ],
    );
    const plain = await client.chat.completions.create({ model: vllm.model, ...ask() });
    assert.equal(plain.choices[0]!.logprobs, null);
    assert.equal('logprobs' in vllm.lastChatBody(), false);
  });

  test('requests with logprobs bypass the answer cache (it keeps text, not probabilities)', async () => {
    for (let i = 0; i < 2; i++) {
      const { response } = await client.chat.completions
        .create({ model: vllm.model, ...ask({ logprobs: true, temperature: 0 }) })
        .withResponse();
      assert.equal(response.headers.get('x-glimpse-cache'), 'bypass');
    }
  });

  test('top_logprobs out of range or without logprobs is 400 invalid_request', async () => {
    for (const [extra, param] of [
      [{ logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
      [{ top_logprobs: 2 }, 'top_logprobs'],
      [{ logprobs: 'yes' }, 'logprobs'],
    ] as const) {
      await assert.rejects(
        client.chat.completions.create({ model: vllm.model, ...ask(extra) } as never),
        (err: InstanceType<typeof OpenAI.APIError>) => {
          assert.deepEqual([err.status, err.code, err.param], [400, 'invalid_request', param]);
          return true;
        },
      );
    }
  });
});

describe('logprobs from the embedded engine', () => {
  let g: RunningGlimpse;
  let client: OpenAI;
  before(async () => {
    g = await startGlimpse({ engine: 'embedded', modelPath: FIXTURE });
    client = new OpenAI({ baseURL: g.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => g?.close());

  test('greedy: one entry per answer token, each the most likely of its alternatives, all proper log probabilities', async () => {
    const res = await client.chat.completions.create({
      model: 'tiny-vlm',
      ...ask({ logprobs: true, top_logprobs: 3, temperature: 0, max_tokens: 10 }),
    });
    const entries = res.choices[0]!.logprobs!.content!;
    // One per token of the answer; an end-of-answer token (finish_reason stop) is not part of it.
    assert.equal(entries.length, res.usage!.completion_tokens - (res.choices[0]!.finish_reason === 'stop' ? 1 : 0));
    for (const e of entries) {
      assert.equal(e.top_logprobs.length, 3);
      assert.equal(e.top_logprobs[0]!.token, e.token, 'greedy takes the most likely token');
      assert.equal(e.top_logprobs[0]!.logprob, e.logprob);
      assert.ok(e.logprob <= 0);
      assert.ok(
        e.top_logprobs.every((t, i) => i === 0 || t.logprob <= e.top_logprobs[i - 1]!.logprob),
        'alternatives in descending order',
      );
      assert.ok(e.top_logprobs.reduce((s, t) => s + Math.exp(t.logprob), 0) <= 1 + 1e-9);
      assert.deepEqual(e.bytes, [...Buffer.from(e.token, 'utf8')]);
    }
  });

  test('sampled and streamed: the drawn token is never more likely than the best alternative', async () => {
    const stream = await client.chat.completions.create({
      model: 'tiny-vlm',
      ...ask({ logprobs: true, top_logprobs: 1, temperature: 1, seed: 5, max_tokens: 12 }),
      stream: true,
      stream_options: { include_usage: true },
    });
    const entries: Array<{ logprob: number; top_logprobs: Array<{ logprob: number }> }> = [];
    let completion = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      entries.push(...(chunk.choices[0]?.logprobs?.content ?? []));
      completion = chunk.usage?.completion_tokens ?? completion;
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(entries.length, completion - (finish === 'stop' ? 1 : 0));
    assert.ok(entries.every((e) => e.logprob <= e.top_logprobs[0]!.logprob + 1e-6));
  });
});

test('the simulated engine has no log probabilities: 400 logprobs_unsupported', async () => {
  const g = await startGlimpse({ engine: 'simulated' });
  try {
    const res = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], logprobs: true }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'logprobs_unsupported');
  } finally {
    await g.close();
  }
});
