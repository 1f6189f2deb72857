import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { RED_PIXEL_PNG, startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';

describe('OpenAI SDK against glimpse in front of a vLLM upstream', () => {
  let vllm: FakeVllm;
  let glimpse: RunningGlimpse;
  let client: OpenAI;

  before(async () => {
    vllm = await startFakeVllm();
    glimpse = await startGlimpse({ engine: 'upstream', upstream: vllm.url, upstreamModel: vllm.model });
    client = new OpenAI({ baseURL: glimpse.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await glimpse.close();
    await vllm.close();
  });

  const imageMessage = (text: string) => [
    {
      role: 'user' as const,
      content: [
        { type: 'image_url' as const, image_url: { url: RED_PIXEL_PNG } },
        { type: 'text' as const, text },
      ],
    },
  ];

  test('lists the served model', async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [vllm.model],
    );
  });

  test('retrieves one model by id, slash and all (encoded or not); an unknown one is 404 model_not_found', async () => {
    const model = await client.models.retrieve(vllm.model);
    assert.deepEqual([model.id, model.object], [vllm.model, 'model']);
    assert.ok(vllm.model.includes('/'));
    assert.equal((await fetch(`${glimpse.url}/v1/models/${vllm.model}`)).status, 200);
    assert.equal(
      (await fetch(`${glimpse.url}/v1/models/50%25`)).status,
      404,
      'an id with a percent sign is looked up, not decoded twice',
    );
    await assert.rejects(client.models.retrieve('gpt-4o'), (err: InstanceType<typeof OpenAI.NotFoundError>) => {
      assert.deepEqual([err.status, err.code], [404, 'model_not_found']);
      return true;
    });
  });

  test('answers a non-streaming request with an image as data URL, carrying reasoning and usage', async () => {
    const res = await client.chat.completions.create({
      model: vllm.model,
      messages: imageMessage('What is this?'),
      max_tokens: 64,
      temperature: 0,
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices[0]!.message.content, 'A red square on white.');
    assert.equal(
      (res.choices[0]!.message as unknown as { reasoning_content: string }).reasoning_content,
      'The user asks about the image.',
    );
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    // The upstream gave no image count: glimpse estimates it from the 28 px grid (a tiny image is one cell).
    assert.deepEqual(res.usage, {
      prompt_tokens: 42,
      completion_tokens: 7,
      total_tokens: 49,
      prompt_tokens_details: { image_tokens: 1 },
    });
  });

  test('streams chat.completion.chunk objects with reasoning deltas, a usage chunk and [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: vllm.model,
      messages: imageMessage('Describe it.'),
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let reasoning = '';
    let finish: string | null = null;
    let usage: unknown = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      const choice = chunk.choices[0];
      if (choice) {
        content += choice.delta.content ?? '';
        reasoning += (choice.delta as { reasoning_content?: string }).reasoning_content ?? '';
        finish = choice.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(content, 'A red square on white.');
    assert.equal(reasoning, 'The user asks about the image.');
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, {
      prompt_tokens: 42,
      completion_tokens: 7,
      total_tokens: 49,
      prompt_tokens_details: { image_tokens: 1 },
    });
    assert.ok(chunks >= 9, `expected one chunk per delta, got ${chunks}`);
  });

  test('passes sampling params, the image and the request id to the upstream', async () => {
    const before = vllm.requests.length;
    await client.chat.completions.create(
      {
        model: vllm.model,
        messages: imageMessage('Params?'),
        max_tokens: 33,
        temperature: 0.25,
        top_p: 0.5,
        seed: 7,
        stop: ['END'],
      },
      { headers: { 'x-request-id': 'req-abc-123' } },
    );
    const sent = vllm.requests.slice(before).find((r) => r.method === 'POST')!;
    assert.equal(sent.headers['x-request-id'], 'req-abc-123');
    assert.equal(sent.body.max_tokens, 33);
    assert.equal(sent.body.temperature, 0.25);
    assert.equal(sent.body.top_p, 0.5);
    assert.equal(sent.body.seed, 7);
    assert.deepEqual(sent.body.stop, ['END']);
    assert.equal(sent.body.stream, true);
    const parts = sent.body.messages[0].content;
    assert.equal(parts[0].type, 'image_url');
    assert.match(parts[0].image_url.url, /^data:image\/(png|jpeg|webp);base64,/);
    assert.deepEqual(parts[1], { type: 'text', text: 'Params?' });
  });

  test('an unknown model is a 404 model_not_found in OpenAI error shape', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-9', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.NotFoundError);
        assert.equal((err as InstanceType<typeof OpenAI.APIError>).code, 'model_not_found');
        assert.equal((err as InstanceType<typeof OpenAI.APIError>).param, 'model');
        return true;
      },
    );
  });

  test('an upstream failure mid-stream arrives as a final error event, then [DONE]', async () => {
    vllm.script = (r) => (r.body?.messages?.[0]?.content === 'die please' ? { dieAfter: 2 } : {});
    const res = await fetch(glimpse.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: vllm.model, messages: [{ role: 'user', content: 'die please' }], stream: true }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    const last = JSON.parse(events.at(-2)!.slice('data: '.length));
    assert.equal(last.error.code, 'upstream_error');
    assert.match(text, /"content":"A red"/);
  });
});
