/**
 * The Responses API as the AI SDK and LangChain use it: item_reference input items resolved from
 * the store (only the caller's key's), typed input_items, a reasoning summary when one is asked
 * for (whole and streamed), reasoning tokens counted, a stored response replayed as its events
 * (GET ?stream=true, starting_after), and cancel of a response still being generated.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { upstreamSuite } from '../helpers/upstream-suite.js';

type Sent = { messages: Array<{ role: string; content: unknown }> };

async function events(res: Response): Promise<Array<Record<string, any>>> {
  const text = await res.text();
  return text
    .split('\n\n')
    .map((frame) => frame.split('\n').find((l) => l.startsWith('data: ')))
    .filter((l): l is string => !!l)
    .map((l) => JSON.parse(l.slice(6)));
}

describe('Responses API: references, summaries, replay, cancel', () => {
  const suite = upstreamSuite(
    { before, after },
    { cache: { enabled: false }, apiKeys: ['alice:alice-secret-1', 'bob:bob-secret-22'] },
  );
  const client = (key: string) => new OpenAI({ baseURL: suite.glimpse.url + '/v1', apiKey: key, maxRetries: 0 });
  const post = (path: string, body: unknown, key = 'alice-secret-1') =>
    fetch(suite.glimpse.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    });

  test('item_reference items are the stored items they name: earlier input and output reach the model again', async () => {
    suite.script = { reasoning: [], content: ['A red', ' square.'] };
    const first = await client('alice-secret-1').responses.create({
      model: 'glm-4.6v-flash',
      input: [{ role: 'user', content: 'What is this?' }],
    });
    const items = await client('alice-secret-1').responses.inputItems.list(first.id);
    const userId = items.data[0]!.id!;
    const answerId = (first.output.find((o) => o.type === 'message') as { id: string }).id;
    suite.script = { content: ['Red.'] };
    // As the AI SDK continues a chat with store: true: references to the earlier turn, then the new message.
    const second = await client('alice-secret-1').responses.create({
      model: 'glm-4.6v-flash',
      input: [
        { type: 'item_reference', id: userId },
        { type: 'item_reference', id: answerId },
        { role: 'user', content: 'Its colour?' },
      ] as never,
    });
    assert.equal(second.output_text, 'Red.');
    const sent = suite.vllm.lastChatBody() as Sent;
    assert.deepEqual(sent.messages, [
      { role: 'user', content: 'What is this?' },
      { role: 'assistant', content: 'A red square.' },
      { role: 'user', content: 'Its colour?' },
    ]);
  });

  test("an unknown item, or another key's, is 400 item_reference_not_found naming the input item", async () => {
    suite.script = { content: ['Hi.'] };
    const mine = await client('alice-secret-1').responses.create({ model: 'glm-4.6v-flash', input: 'Hello' });
    const itemId = (mine.output[0] as { id: string }).id;
    for (const [key, id] of [
      ['alice-secret-1', 'msg_nope'],
      ['bob-secret-22', itemId],
    ] as const) {
      const res = await post(
        '/v1/responses',
        {
          input: [
            { role: 'user', content: 'x' },
            { type: 'item_reference', id },
          ],
        },
        key,
      );
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: { code: string; param: string; message: string } };
      assert.deepEqual([body.error.code, body.error.param], ['item_reference_not_found', 'input.1.id']);
      assert.match(body.error.message, new RegExp(id));
    }
  });

  test('input_items are typed: messages have type "message" and typed content parts', async () => {
    suite.script = { content: ['Ok.'] };
    const r = await client('alice-secret-1').responses.create({
      model: 'glm-4.6v-flash',
      input: [
        { role: 'user', content: 'plain string' },
        { role: 'assistant', content: 'earlier answer' },
        { role: 'user', content: 'again' },
      ],
    });
    const items = await client('alice-secret-1').responses.inputItems.list(r.id, { order: 'asc' });
    assert.deepEqual(
      items.data.map((it) => [it.type, (it as { content: Array<{ type: string }> }).content.map((p) => p.type)]),
      [
        ['message', ['input_text']],
        ['message', ['output_text']],
        ['message', ['input_text']],
      ],
    );
  });

  test('with reasoning.summary the reasoning is the summary (summary_text), streamed as reasoning_summary_* events; reasoning tokens are counted', async () => {
    suite.script = { reasoning: ['Red', ' pixels.'], content: ['A red square.'] };
    const whole = await client('alice-secret-1').responses.create({
      model: 'glm-4.6v-flash',
      input: 'What?',
      reasoning: { effort: 'medium', summary: 'auto' },
    });
    const rs = whole.output[0] as { type: string; summary: Array<{ type: string; text: string }>; content?: unknown[] };
    assert.equal(rs.type, 'reasoning');
    assert.deepEqual(rs.summary, [{ type: 'summary_text', text: 'Red pixels.' }]);
    assert.equal(whole.reasoning?.summary, 'auto');
    assert.equal(
      whole.usage?.output_tokens_details.reasoning_tokens,
      2,
      'the two reasoning deltas the upstream streamed',
    );

    const stream = await client('alice-secret-1').responses.create({
      model: 'glm-4.6v-flash',
      input: 'What?',
      reasoning: { summary: 'auto' },
      stream: true,
    });
    const types: string[] = [];
    let summary = '';
    let final: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.reasoning_summary_text.delta') summary += ev.delta;
      if (ev.type === 'response.completed') final = ev.response;
    }
    assert.equal(summary, 'Red pixels.');
    for (const t of [
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
    ])
      assert.ok(types.includes(t), t);
    assert.ok(!types.includes('response.reasoning_text.delta'));
    assert.deepEqual((final!.output[0] as { summary: unknown }).summary, [
      { type: 'summary_text', text: 'Red pixels.' },
    ]);

    // Without a summary asked for, reasoning stays reasoning_text content, as before.
    const plain = await client('alice-secret-1').responses.create({ model: 'glm-4.6v-flash', input: 'What?' });
    assert.deepEqual((plain.output[0] as { summary: unknown[] }).summary, []);
  });

  test('GET /v1/responses/{id}?stream=true replays the stored response as the events that build it; starting_after skips', async () => {
    suite.script = { reasoning: ['Hm.'], content: ['A', ' cat.'], toolCalls: [{ name: 'look', arguments: '{"x":1}' }] };
    const r = await client('alice-secret-1').responses.create({
      model: 'glm-4.6v-flash',
      input: 'What?',
      tools: [{ type: 'function', name: 'look', parameters: { type: 'object', properties: {} }, strict: false }],
    });
    const auth = { authorization: 'Bearer alice-secret-1' };
    const res = await fetch(`${suite.glimpse.url}/v1/responses/${r.id}?stream=true`, { headers: auth });
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const evs = await events(res);
    assert.deepEqual(
      evs.map((e) => e.sequence_number),
      evs.map((_, i) => i),
    );
    assert.equal(evs[0]!.type, 'response.created');
    const last = evs.at(-1)!;
    assert.equal(last.type, 'response.completed');
    // The SDK adds output_text to what it got; the rest is the stored response as it was answered.
    const { output_text: _added, ...answered } = JSON.parse(JSON.stringify(r)) as Record<string, unknown>;
    assert.deepEqual(last.response, answered);
    assert.equal(
      evs
        .filter((e) => e.type === 'response.output_text.delta')
        .map((e) => e.delta)
        .join(''),
      'A cat.',
    );
    assert.equal(evs.find((e) => e.type === 'response.function_call_arguments.done')?.arguments, '{"x":1}');

    const tail = await events(
      await fetch(`${suite.glimpse.url}/v1/responses/${r.id}?stream=true&starting_after=${evs.length - 3}`, {
        headers: auth,
      }),
    );
    assert.deepEqual(
      tail.map((e) => e.sequence_number),
      [evs.length - 2, evs.length - 1],
    );
    assert.equal(
      (
        await fetch(`${suite.glimpse.url}/v1/responses/${r.id}?stream=true`, {
          headers: { authorization: 'Bearer bob-secret-22' },
        })
      ).status,
      404,
    );
  });

  test('cancel stops a response being generated: the stream ends with response.cancelled; a finished one comes back as it is; an unknown one is 404', async () => {
    suite.script = { reasoning: [], content: Array.from({ length: 400 }, () => ' word'), delayMs: 20 };
    const res = await post('/v1/responses', { model: 'glm-4.6v-flash', input: 'Talk.', stream: true });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let id = '';
    while (!text.includes('response.output_text.delta')) {
      const { value, done } = await reader.read();
      assert.ok(!done);
      text += decoder.decode(value, { stream: true });
      id ||= /"id":"(resp_[0-9a-f]+)"/.exec(text)?.[1] ?? '';
    }
    assert.equal(
      (await post(`/v1/responses/${id}/cancel`, {}, 'bob-secret-22')).status,
      404,
      'another key cannot cancel it',
    );
    const cancel = await post(`/v1/responses/${id}/cancel`, {});
    assert.equal(cancel.status, 200);
    assert.equal(((await cancel.json()) as { status: string }).status, 'cancelled');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const frames = text.trim().split('\n\n');
    assert.match(frames.at(-1)!, /^event: response\.cancelled\ndata: .*"status":"cancelled"/);

    suite.script = { content: ['Done.'] };
    const finished = await client('alice-secret-1').responses.create({ model: 'glm-4.6v-flash', input: 'Short.' });
    const again = await client('alice-secret-1').responses.cancel(finished.id);
    assert.deepEqual([again.id, again.status], [finished.id, 'completed']);
    assert.equal((await post('/v1/responses/resp_unknown/cancel', {})).status, 404);
  });
});
