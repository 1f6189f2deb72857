/**
 * Anthropic's Messages API through the official @anthropic-ai/sdk, in front of the vLLM double:
 * create (image as base64, system, thinking), stream (message_start … message_stop, thinking and
 * text deltas, ping), a tool round trip (tool_use out, tool_result in), count_tokens, x-api-key and
 * anthropic-version, and errors in Anthropic's shape with its statuses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { upstreamSuite } from '../helpers/upstream-suite.js';
import { RED_PIXEL_PNG } from '../helpers/glimpse.js';

const PNG_BASE64 = RED_PIXEL_PNG.slice('data:image/png;base64,'.length);
const imageQuestion: Anthropic.MessageParam[] = [
  {
    role: 'user',
    content: [
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_BASE64 } },
      { type: 'text', text: 'What is this?' },
    ],
  },
];

describe('Anthropic Messages API with the official SDK', () => {
  const suite = upstreamSuite(
    { before, after },
    { cache: { enabled: false }, apiKeys: ['claude-user:anthropic-key-1'] },
  );
  const client = () => new Anthropic({ baseURL: suite.glimpse.url, apiKey: 'anthropic-key-1', maxRetries: 0 });

  test('create: thinking and text blocks, end_turn, usage; system, image, sampling and thinking reach the model', async () => {
    suite.script = { reasoning: ['Red', ' pixels.'], content: ['A red', ' square.'] };
    const msg = await client().messages.create({
      model: 'glm-4.6v-flash',
      max_tokens: 2048,
      system: 'Answer briefly.',
      messages: imageQuestion,
      temperature: 0.5,
      top_k: 20,
      stop_sequences: ['END'],
      thinking: { type: 'enabled', budget_tokens: 1024 },
    });
    assert.equal(msg.type, 'message');
    assert.match(msg.id, /^msg_/);
    assert.deepEqual(
      msg.content.map((b) => b.type),
      ['thinking', 'text'],
    );
    assert.equal((msg.content[0] as Anthropic.ThinkingBlock).thinking, 'Red pixels.');
    assert.equal((msg.content[1] as Anthropic.TextBlock).text, 'A red square.');
    assert.equal(msg.stop_reason, 'end_turn');
    assert.deepEqual(msg.usage && [msg.usage.input_tokens, msg.usage.output_tokens], [42, 4]);
    const sent = suite.vllm.lastChatBody();
    assert.deepEqual(sent.messages[0], { role: 'system', content: 'Answer briefly.' });
    assert.equal(sent.messages[1].content[0].type, 'image_url');
    assert.deepEqual(
      [sent.temperature, sent.top_k, sent.stop, sent.max_tokens, sent.chat_template_kwargs?.enable_thinking],
      [0.5, 20, ['END'], 2048, true],
    );
  });

  test("stream: Anthropic's event sequence, read by the SDK's stream helper into the same message", async () => {
    suite.script = { reasoning: ['Hm.'], content: ['A red', ' square.'] };
    const stream = client().messages.stream({ model: 'glm-4.6v-flash', max_tokens: 256, messages: imageQuestion });
    const types: string[] = [];
    let text = '';
    stream.on('streamEvent', (ev) => types.push(ev.type));
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();
    assert.equal(text, 'A red square.');
    assert.deepEqual(
      final.content.map((b) => b.type),
      ['thinking', 'text'],
    );
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, 3, 'one reasoning and two text chunks, as the double counts them');
    assert.deepEqual(types.slice(0, 2), ['message_start', 'content_block_start']);
    assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    assert.equal(types.filter((t) => t === 'content_block_start').length, 2);

    // The SDK passes pings over; on the wire one follows message_start, as Anthropic sends it.
    const raw = await fetch(suite.glimpse.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'anthropic-key-1' },
      body: JSON.stringify({ max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const frames = (await raw.text()).trim().split('\n\n');
    assert.deepEqual(
      frames.slice(0, 2).map((f) => f.split('\n')[0]),
      ['event: message_start', 'event: ping'],
    );
    assert.equal(frames[1], 'event: ping\ndata: {"type":"ping"}');
  });

  test('tools: a tool_use block out (streamed as input_json_delta), the tool_result turn back in', async () => {
    const weather: Anthropic.Tool = {
      name: 'get_weather',
      description: 'Weather in a city',
      input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    };
    suite.script = {
      reasoning: [],
      content: [],
      toolCalls: [{ name: 'get_weather', arguments: ['{"city": ', '"Paris"}'] }],
    };
    const stream = client().messages.stream({
      model: 'glm-4.6v-flash',
      max_tokens: 256,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weather],
      tool_choice: { type: 'any' },
    });
    const first = await stream.finalMessage();
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use')!;
    assert.deepEqual([use.name, use.input], ['get_weather', { city: 'Paris' }]);
    const sent = suite.vllm.lastChatBody();
    assert.deepEqual(sent.tools, [
      {
        type: 'function',
        function: { name: 'get_weather', description: 'Weather in a city', parameters: weather.input_schema },
      },
    ]);
    assert.equal(sent.tool_choice, 'required');

    suite.script = { reasoning: [], content: ['18 °C in Paris.'] };
    const second = await client().messages.create({
      model: 'glm-4.6v-flash',
      max_tokens: 256,
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '{"temp_c": 18}' }] },
      ],
    });
    assert.equal((second.content[0] as Anthropic.TextBlock).text, '18 °C in Paris.');
    const turns = suite.vllm.lastChatBody().messages;
    assert.deepEqual(turns.slice(1), [
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: use.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: 'tool', content: '{"temp_c": 18}', tool_call_id: use.id },
    ]);
  });

  test('count_tokens answers with the input tokens the engine counted', async () => {
    suite.script = { reasoning: [], content: ['x'], promptTokens: 77 };
    const n = await client().messages.countTokens({ model: 'glm-4.6v-flash', messages: imageQuestion });
    assert.deepEqual(n, { input_tokens: 77 });
  });

  test("errors: Anthropic's shape and statuses, a stable code; missing max_tokens, a wrong block, a bad key", async () => {
    const post = (
      body: unknown,
      headers: Record<string, string> = { 'x-api-key': 'anthropic-key-1', 'anthropic-version': '2023-06-01' },
    ) =>
      fetch(suite.glimpse.url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    const cases: Array<[unknown, Record<string, string> | undefined, number, string, string]> = [
      [{ messages: [{ role: 'user', content: 'hi' }] }, undefined, 400, 'invalid_request_error', 'invalid_max_tokens'],
      [
        { max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'video', url: 'x' }] }] },
        undefined,
        400,
        'invalid_request_error',
        'invalid_request',
      ],
      [
        {
          max_tokens: 8,
          messages: [
            {
              role: 'assistant',
              content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_BASE64 } }],
            },
          ],
        },
        undefined,
        400,
        'invalid_request_error',
        'invalid_request',
      ],
      [
        {
          max_tokens: 2000,
          thinking: { type: 'enabled', budget_tokens: 4000 },
          messages: [{ role: 'user', content: 'hi' }],
        },
        undefined,
        400,
        'invalid_request_error',
        'invalid_request',
      ],
      [
        { max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] },
        { 'x-api-key': 'wrong-key-123' },
        401,
        'authentication_error',
        'unauthorized',
      ],
    ];
    for (const [body, headers, status, type, code] of cases) {
      const res = await post(body, headers);
      const got = (await res.json()) as { type: string; error: { type: string; message: string; code: string } };
      assert.deepEqual(
        [res.status, got.type, got.error.type, got.error.code],
        [status, 'error', type, code],
        JSON.stringify(body),
      );
      assert.ok(got.error.message.length > 0);
    }
    await assert.rejects(
      client().messages.create({ model: 'glm-4.6v-flash', max_tokens: 0, messages: [{ role: 'user', content: 'hi' }] }),
      (err: InstanceType<typeof Anthropic.BadRequestError>) => {
        assert.equal(err.status, 400);
        assert.equal((err.error as { error: { type: string } }).error.type, 'invalid_request_error');
        return true;
      },
    );
  });
});
