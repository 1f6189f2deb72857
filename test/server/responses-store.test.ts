/**
 * Stored responses through the official openai SDK: previous_response_id continues a conversation
 * (images, answers and function calls of earlier turns reach the model again; instructions do
 * not), responses.retrieve / inputItems.list / delete, store: false, one API key never sees
 * another's, --no-responses-store, the size bound, and Redis shared by two instances.
 */
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { RED_PIXEL_PNG, startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { upstreamSuite } from '../helpers/upstream-suite.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { hasRedis, redisPerSuite } from '../helpers/redis.js';

type Sent = { messages: Array<{ role: string; content: unknown; tool_calls?: unknown[]; tool_call_id?: string }> };
const imageQuestion = [
  {
    role: 'user' as const,
    content: [
      { type: 'input_image' as const, image_url: RED_PIXEL_PNG, detail: 'auto' as const },
      { type: 'input_text' as const, text: 'What is this?' },
    ],
  },
];

async function errorOf(
  p: Promise<unknown>,
): Promise<{ status: number; code: string; param: string | null; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { status: number; code: string; param: string | null; message: string };
    return { status: e.status, code: e.code, param: e.param, message: e.message };
  }
  throw new Error('expected the call to fail');
}

describe('stored responses (memory)', () => {
  const suite = upstreamSuite({ before, after }, { cache: { enabled: false } });
  const sent = () => suite.vllm.lastChatBody() as Sent;

  test('previous_response_id puts the earlier turn (image, answer) before the new input; its instructions stay behind', async () => {
    suite.script = { reasoning: ['Red.'], content: ['A red', ' square.'] };
    const first = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      instructions: 'Answer briefly.',
      input: imageQuestion,
    });
    assert.equal(first.store, true);
    suite.script = { content: ['Red.'] };
    const second = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      previous_response_id: first.id,
      input: 'And its colour?',
    });
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.output_text, 'Red.');
    const messages = sent().messages;
    assert.deepEqual(
      messages.map((m) => m.role),
      ['user', 'assistant', 'user'],
      'no system message: instructions are not carried over',
    );
    assert.equal(
      (messages[0]!.content as Array<{ type: string }>)[0]!.type,
      'image_url',
      "the first turn's image reaches the model again",
    );
    assert.deepEqual(messages.slice(1), [
      { role: 'assistant', content: 'A red square.' },
      { role: 'user', content: 'And its colour?' },
    ]);

    // A third turn walks the whole chain.
    suite.script = { content: ['Yes.'] };
    await suite.client.responses.create({ model: 'glm-4.6v-flash', previous_response_id: second.id, input: 'Sure?' });
    assert.deepEqual(
      sent().messages.map((m) => m.role),
      ['user', 'assistant', 'user', 'assistant', 'user'],
    );
  });

  test('a streamed response is stored before response.completed: the client may continue it at once', async () => {
    suite.script = { content: ['A', ' cat.'] };
    const stream = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      input: 'What animal?',
      stream: true,
    });
    let id = '';
    for await (const ev of stream) {
      if (ev.type === 'response.completed') {
        id = ev.response.id;
        assert.equal(ev.response.store, true);
        // No waiting: the continuation is sent from inside the event loop of the stream.
        suite.script = { content: ['Grey.'] };
        const next = await suite.client.responses.create({
          model: 'glm-4.6v-flash',
          previous_response_id: id,
          input: 'Colour?',
        });
        assert.equal(next.output_text, 'Grey.');
      }
    }
    assert.ok(id);
    assert.deepEqual(sent().messages.slice(0, 2), [
      { role: 'user', content: 'What animal?' },
      { role: 'assistant', content: 'A cat.' },
    ]);
  });

  test('the function-calling loop with previous_response_id: the call comes from the store, the output from the client', async () => {
    const tools = [
      {
        type: 'function' as const,
        name: 'get_weather',
        parameters: { type: 'object', properties: { city: { type: 'string' } } },
        strict: false,
      },
    ];
    suite.script = { content: [], toolCalls: [{ name: 'get_weather', arguments: '{"city": "Oslo"}' }] };
    const first = await suite.client.responses.create({ model: 'glm-4.6v-flash', input: 'Weather in Oslo?', tools });
    const callId = (first.output.find((o) => o.type === 'function_call') as { call_id: string } | undefined)?.call_id;
    assert.ok(callId);
    suite.script = { content: ['4 °C in Oslo.'] };
    const second = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      previous_response_id: first.id,
      tools,
      input: [{ type: 'function_call_output', call_id: callId, output: '{"temp_c": 4}' }],
    });
    assert.equal(second.output_text, '4 °C in Oslo.');
    assert.deepEqual(sent().messages, [
      { role: 'user', content: 'Weather in Oslo?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: callId, type: 'function', function: { name: 'get_weather', arguments: '{"city": "Oslo"}' } },
        ],
      },
      { role: 'tool', tool_call_id: callId, content: '{"temp_c": 4}' },
    ]);
  });

  test('retrieve gives the response as answered; inputItems.list pages through its input; delete forgets it', async () => {
    suite.script = { content: ['Two things.'] };
    const input = [
      { role: 'user' as const, content: 'First question.' },
      { role: 'assistant' as const, content: 'First answer.' },
      { role: 'user' as const, content: 'Second question.' },
    ];
    const created = await suite.client.responses.create({ model: 'glm-4.6v-flash', input });
    const got = await suite.client.responses.retrieve(created.id);
    assert.deepEqual(got, created);

    const desc = await suite.client.responses.inputItems.list(created.id);
    // Typed, as OpenAI lists them: a string content is one input_text (or, for the assistant, output_text) part.
    assert.deepEqual(
      desc.data.map((i) => (i as { content: Array<{ text: string }> }).content.map((p) => p.text)),
      [['Second question.'], ['First answer.'], ['First question.']],
    );
    assert.ok(
      desc.data.every((i) => typeof i.id === 'string' && i.id.length > 4),
      'every input item has an id',
    );
    const asc = await suite.client.responses.inputItems.list(created.id, { order: 'asc', limit: 2 });
    assert.equal(asc.data.length, 2);
    assert.equal(asc.has_more, true);
    const rest = await suite.client.responses.inputItems.list(created.id, { order: 'asc', after: asc.data[1]!.id });
    assert.deepEqual(
      [rest.data.length, rest.has_more, (rest.data[0] as { content: Array<{ text: string }> }).content[0]!.text],
      [1, false, 'Second question.'],
    );

    await suite.client.responses.delete(created.id);
    const gone = await errorOf(suite.client.responses.retrieve(created.id));
    assert.deepEqual([gone.status, gone.code], [404, 'response_not_found']);
    const cont = await errorOf(
      suite.client.responses.create({ model: 'glm-4.6v-flash', previous_response_id: created.id, input: 'More?' }),
    );
    assert.deepEqual(
      [cont.status, cont.code, cont.param],
      [400, 'previous_response_not_found', 'previous_response_id'],
    );
    const again = await fetch(`${suite.glimpse.url}/v1/responses/${created.id}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
  });

  test("an error in a continuation's input is named as the client sent it, not shifted by the stored turns", async () => {
    suite.script = { content: ['Ok.'] };
    const first = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      input: [
        { role: 'user', content: 'One.' },
        { role: 'assistant', content: 'Two.' },
        { role: 'user', content: 'Three?' },
      ],
    });
    const e = await errorOf(
      suite.client.responses.create({
        model: 'glm-4.6v-flash',
        previous_response_id: first.id,
        input: [{ role: 'assistant', content: [{ type: 'input_image', image_url: RED_PIXEL_PNG, detail: 'auto' }] }],
      } as never),
    );
    assert.deepEqual([e.status, e.param], [400, 'input.0.content.0']);
  });

  test('store: false keeps nothing, and says so', async () => {
    suite.script = { content: ['Fine.'] };
    const r = await suite.client.responses.create({ model: 'glm-4.6v-flash', input: 'Hello?', store: false });
    assert.equal(r.store, false);
    assert.equal((await errorOf(suite.client.responses.retrieve(r.id))).code, 'response_not_found');
  });

  test('a conversation whose earlier turn is gone is refused, naming that turn', async () => {
    suite.script = { content: ['One.'] };
    const a = await suite.client.responses.create({ model: 'glm-4.6v-flash', input: 'Count.' });
    const b = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      previous_response_id: a.id,
      input: 'Next.',
    });
    await suite.client.responses.delete(a.id);
    const e = await errorOf(
      suite.client.responses.create({ model: 'glm-4.6v-flash', previous_response_id: b.id, input: 'Next.' }),
    );
    assert.deepEqual([e.status, e.code], [400, 'previous_response_not_found']);
    assert.match(e.message, new RegExp(`earlier turn.*${a.id}`));
  });
});

describe('stored responses: keys, limits and --no-responses-store', () => {
  let vllm: FakeVllm;
  const started: RunningGlimpse[] = [];
  const start = async (flags: Record<string, unknown>) => {
    const g = await startGlimpse({
      engine: 'upstream',
      upstream: [vllm.url],
      upstreamModel: vllm.model,
      modelName: 'glm-4.6v-flash',
      upstreamHealthInterval: 0,
      ...flags,
    });
    started.push(g);
    return g;
  };
  const client = (g: RunningGlimpse, apiKey = 'unused') =>
    new OpenAI({ baseURL: g.url + '/v1', apiKey, maxRetries: 0 });
  before(async () => {
    vllm = await startFakeVllm();
  });
  after(async () => {
    for (const g of started) await g.close();
    await vllm?.close();
  });

  test("one API key never sees or continues another's responses", async () => {
    const g = await start({ apiKeys: ['alice:alice-secret-0123456789', 'bob:bob-secret-0123456789'] });
    const alice = client(g, 'alice-secret-0123456789');
    const bob = client(g, 'bob-secret-0123456789');
    const r = await alice.responses.create({ model: 'glm-4.6v-flash', input: 'Private.' });
    assert.equal((await alice.responses.retrieve(r.id)).id, r.id);
    assert.equal((await errorOf(bob.responses.retrieve(r.id))).code, 'response_not_found');
    assert.equal((await errorOf(bob.responses.inputItems.list(r.id))).code, 'response_not_found');
    assert.equal(
      (await errorOf(bob.responses.create({ model: 'glm-4.6v-flash', previous_response_id: r.id, input: 'Mine?' })))
        .code,
      'previous_response_not_found',
    );
    assert.equal((await errorOf(bob.responses.delete(r.id))).code, 'response_not_found');
    assert.equal((await alice.responses.retrieve(r.id)).id, r.id, "bob's delete did not touch it");
  });

  test('--no-responses-store: nothing is kept, responses say store: false, previous_response_id is 400 saying why', async () => {
    const g = await start({ responses: { store: false } });
    const r = await client(g).responses.create({ model: 'glm-4.6v-flash', input: 'Hi.' });
    assert.equal(r.store, false);
    const e = await errorOf(
      client(g).responses.create({ model: 'glm-4.6v-flash', previous_response_id: r.id, input: 'Again.' }),
    );
    assert.deepEqual([e.status, e.code, e.param], [400, 'invalid_request', 'previous_response_id']);
    assert.match(e.message, /keeps no responses/);
  });

  test('a response over a quarter of --responses-max-bytes is answered but not kept; older ones make room for newer', async () => {
    const g = await start({ responses: { maxBytes: 16 * 1024 } });
    const big = await client(g).responses.create({ model: 'glm-4.6v-flash', input: 'x'.repeat(5000) });
    assert.equal(big.status, 'completed');
    assert.equal((await errorOf(client(g).responses.retrieve(big.id))).code, 'response_not_found');
    const ids: string[] = [];
    for (let i = 0; i < 20; i++)
      ids.push(
        (await client(g).responses.create({ model: 'glm-4.6v-flash', input: `Question ${i}: ${'y'.repeat(400)}` })).id,
      );
    assert.equal((await client(g).responses.retrieve(ids.at(-1)!)).id, ids.at(-1));
    assert.equal(
      (await errorOf(client(g).responses.retrieve(ids[0]!))).code,
      'response_not_found',
      'the bound holds: the oldest went',
    );
  });

  test('a continued conversation over the message limit is refused with 400 naming previous_response_id', async () => {
    const g = await start({ maxMessages: 4 });
    let prev: string | undefined;
    let refused: Awaited<ReturnType<typeof errorOf>> | undefined;
    for (let i = 0; i < 4 && !refused; i++) {
      const p = client(g).responses.create({
        model: 'glm-4.6v-flash',
        input: `Turn ${i}.`,
        ...(prev ? { previous_response_id: prev } : {}),
      });
      try {
        prev = (await p).id;
      } catch {
        refused = await errorOf(p);
      }
    }
    assert.ok(refused, 'the third turn (5 items) is over 4');
    assert.deepEqual([refused.status, refused.code, refused.param], [400, 'invalid_request', 'previous_response_id']);
  });
});

describe(
  'stored responses in Redis',
  { skip: hasRedis ? false : 'redis-server is not installed (apt-get install redis-server)' },
  () => {
    const r = redisPerSuite<RunningGlimpse>({ before, after, beforeEach, afterEach });
    let vllm: FakeVllm;
    before(async () => {
      vllm = await startFakeVllm();
    });
    after(async () => {
      await vllm?.close();
    });
    const start = async (flags: Record<string, unknown> = {}) => {
      const g = await startGlimpse({
        engine: 'upstream',
        upstream: [vllm.url],
        upstreamModel: vllm.model,
        modelName: 'glm-4.6v-flash',
        upstreamHealthInterval: 0,
        redisUrl: r.redis().url,
        jobs: { workers: 0 },
        ...flags,
      });
      r.servers.push(g);
      return new OpenAI({ baseURL: g.url + '/v1', apiKey: 'unused', maxRetries: 0 });
    };

    test('one instance answers, another continues the conversation; reading renews the time to live', async () => {
      const a = await start({ responses: { ttlSeconds: 600 } });
      const b = await start({ responses: { ttlSeconds: 600 } });
      const first = await a.responses.create({ model: 'glm-4.6v-flash', input: imageQuestion });
      const key = `glimpse:response:${first.id}`;
      assert.ok((await r.admin().ttl(key)) > 590);
      await r.admin().expire(key, 30);
      const second = await b.responses.create({
        model: 'glm-4.6v-flash',
        previous_response_id: first.id,
        input: 'Sure?',
      });
      assert.equal(second.previous_response_id, first.id);
      assert.ok((await r.admin().ttl(key)) > 590, 'continuing the conversation renewed its first turn');
      assert.deepEqual(
        (vllm.lastChatBody() as Sent).messages.map((m) => m.role),
        ['user', 'assistant', 'user'],
      );
      assert.deepEqual(await b.responses.retrieve(first.id), first);
    });

    test('with Redis gone, answering still works (the response is just not kept) and a continuation is 503 responses_store_unavailable', async () => {
      const a = await start();
      const first = await a.responses.create({ model: 'glm-4.6v-flash', input: 'Before.' });
      r.redis().stop();
      await new Promise((res) => setTimeout(res, 300));
      const answered = await a.responses.create({ model: 'glm-4.6v-flash', input: 'During.' });
      assert.equal(answered.status, 'completed');
      const e = await errorOf(
        a.responses.create({ model: 'glm-4.6v-flash', previous_response_id: first.id, input: 'After.' }),
      );
      assert.deepEqual([e.status, e.code], [503, 'responses_store_unavailable']);
    });
  },
);
