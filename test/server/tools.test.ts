/**
 * Function calling and structured output through the OpenAI route, with the official openai SDK
 * as the client: passed to an upstream (the vLLM double, speaking vLLM's tool-call stream as its
 * glm45 and hermes parsers write it) and relayed back, streamed and whole; the tool-result turn
 * forwarded; engines without tool support refusing with a clear code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { RED_PIXEL_PNG, startGlimpse } from '../helpers/glimpse.js';
import { upstreamSuite } from '../helpers/upstream-suite.js';

const weather: ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};
const ask: ChatCompletionMessageParam[] = [
  {
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url: RED_PIXEL_PNG } },
      { type: 'text', text: 'Where was this taken, and what is the weather there?' },
    ],
  },
];

describe('tools and response_format through the upstream engine', () => {
  const suite = upstreamSuite({ before, after });

  test('tools, tool_choice and parallel_tool_calls reach the upstream; a streamed call comes back as delta.tool_calls (glm45 style)', async () => {
    suite.script = {
      reasoning: [],
      content: [],
      toolCalls: [{ name: 'get_weather', arguments: '{"city": "Paris", "unit": "c"}' }],
    };
    const stream = await suite.client.chat.completions.create({
      model: 'glm-4.6v-flash',
      messages: ask,
      tools: [weather],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      stream: true,
    });
    const calls: Array<{ id?: string; name: string; arguments: string }> = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      for (const d of choice?.delta?.tool_calls ?? []) {
        const c = (calls[d.index] ??= { name: '', arguments: '' });
        if (d.id) c.id = d.id;
        c.name += d.function?.name ?? '';
        c.arguments += d.function?.arguments ?? '';
      }
      finish = choice?.finish_reason ?? finish;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.length, 1);
    assert.match(
      calls[0]!.id ?? '',
      /^chatcmpl-tool-[0-9a-f]{32}$/,
      "the upstream's call id is kept: the tool result refers to it",
    );
    assert.equal(calls[0]!.name, 'get_weather');
    assert.deepEqual(JSON.parse(calls[0]!.arguments), { city: 'Paris', unit: 'c' });
    const sent = suite.vllm.lastChatBody();
    assert.deepEqual(sent.tools, [weather]);
    assert.equal(sent.tool_choice, 'auto');
    assert.equal(sent.parallel_tool_calls, false);
  });

  test('a whole (non-streamed) answer has message.tool_calls, content null, finish_reason tool_calls; arguments streamed in pieces (hermes style) are joined', async () => {
    suite.script = {
      reasoning: [],
      content: [],
      toolCalls: [
        { name: 'get_weather', arguments: ['{"city": ', '"Lyon"', '}'] },
        { name: 'get_weather', arguments: '{"city": "Nice"}' },
      ],
    };
    const res = await suite.client.chat.completions.create({
      model: 'glm-4.6v-flash',
      messages: ask,
      tools: [weather],
    });
    const choice = res.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    const calls = choice.message.tool_calls!.map((c) =>
      c.type === 'function' ? { name: c.function.name, args: JSON.parse(c.function.arguments) } : null,
    );
    assert.deepEqual(calls, [
      { name: 'get_weather', args: { city: 'Lyon' } },
      { name: 'get_weather', args: { city: 'Nice' } },
    ]);
    assert.ok(choice.message.tool_calls!.every((c) => c.type === 'function' && /^chatcmpl-tool-/.test(c.id)));
  });

  test('a server that leaves out the tool call index still gives separate calls (a new id starts the next one)', async () => {
    suite.script = {
      reasoning: [],
      content: [],
      omitToolIndex: true,
      toolCalls: [
        { name: 'get_weather', arguments: ['{"city": ', '"Oslo"}'] },
        { name: 'get_weather', arguments: ['{"city": ', '"Rome"}'] },
      ],
    };
    const res = await suite.client.chat.completions.create({
      model: 'glm-4.6v-flash',
      messages: ask,
      tools: [weather],
    });
    const calls = res.choices[0]!.message.tool_calls!.map((c) =>
      c.type === 'function' ? JSON.parse(c.function.arguments).city : null,
    );
    assert.deepEqual(calls, ['Oslo', 'Rome']);
  });

  test('the next turn, with the assistant tool_calls and the tool result, is forwarded as the upstream expects it', async () => {
    suite.script = { reasoning: [], content: ['It is ', '18 °C in Paris.'] };
    const id = 'chatcmpl-tool-0123456789abcdef0123456789abcdef';
    const res = await suite.client.chat.completions.create({
      model: 'glm-4.6v-flash',
      tools: [weather],
      messages: [
        ...ask,
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id, type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }],
        },
        { role: 'tool', tool_call_id: id, content: '{"temp_c": 18}' },
      ],
    });
    assert.equal(res.choices[0]!.message.content, 'It is 18 °C in Paris.');
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    const sent = suite.vllm.lastChatBody().messages;
    assert.deepEqual(sent.slice(1), [
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id, type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }],
      },
      { role: 'tool', tool_call_id: id, content: '{"temp_c": 18}' },
    ]);
    assert.equal(sent[0].content[0].type, 'image_url', 'the image of the first turn goes along');
  });

  test('response_format (json_schema) is passed through; text is not sent', async () => {
    suite.script = { reasoning: [], content: ['{"city": "Paris"}'] };
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const res = await suite.client.chat.completions.create({
      model: 'glm-4.6v-flash',
      messages: ask,
      response_format: { type: 'json_schema', json_schema: { name: 'place', schema } },
    });
    assert.deepEqual(JSON.parse(res.choices[0]!.message.content!), { city: 'Paris' });
    assert.deepEqual(suite.vllm.lastChatBody().response_format, {
      type: 'json_schema',
      json_schema: { name: 'place', schema },
    });
    await suite.client.chat.completions.create({
      model: 'glm-4.6v-flash',
      messages: ask,
      response_format: { type: 'text' },
    });
    assert.equal(suite.vllm.lastChatBody().response_format, undefined);
  });

  test('tool turns are never answered from the cache; a deterministic response_format answer is, keyed by its format', async () => {
    suite.script = { reasoning: [], content: [], toolCalls: [{ name: 'get_weather', arguments: '{"city": "Paris"}' }] };
    const posts = () => suite.vllm.requests.filter((r) => r.method === 'POST').length;
    const n = posts();
    for (let i = 0; i < 2; i++) {
      const { response } = await suite.client.chat.completions
        .create({ model: 'glm-4.6v-flash', messages: ask, tools: [weather], temperature: 0 })
        .withResponse();
      assert.equal(response.headers.get('x-glimpse-cache'), 'bypass');
    }
    assert.equal(posts(), n + 2, 'both reached the model');
    suite.script = { reasoning: [], content: ['{"city": "Paris"}'] };
    const json = { type: 'json_object' } as const;
    const first = await suite.client.chat.completions
      .create({ model: 'glm-4.6v-flash', messages: ask, response_format: json, temperature: 0 })
      .withResponse();
    const second = await suite.client.chat.completions
      .create({ model: 'glm-4.6v-flash', messages: ask, response_format: json, temperature: 0 })
      .withResponse();
    const plain = await suite.client.chat.completions
      .create({ model: 'glm-4.6v-flash', messages: ask, temperature: 0 })
      .withResponse();
    assert.deepEqual(
      [first, second, plain].map((r) => r.response.headers.get('x-glimpse-cache')),
      ['miss', 'hit', 'miss'],
    );
  });

  test("an upstream without a tool parser answers 400; the client gets it as a 400 with vLLM's reason", async () => {
    suite.script = {
      status: 400,
      errorMessage: '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
    };
    await assert.rejects(
      suite.client.chat.completions.create({
        model: 'glm-4.6v-flash',
        messages: ask,
        tools: [weather],
        tool_choice: 'auto',
      }),
      (err: InstanceType<typeof OpenAI.APIError>) => {
        assert.equal(err.status, 400);
        assert.equal(err.code, 'invalid_request');
        assert.match(err.message, /--enable-auto-tool-choice/);
        return true;
      },
    );
  });

  test('bad tool requests are refused with a stable code before reaching the upstream', async () => {
    const before = suite.vllm.requests.length;
    const post = (body: object) =>
      fetch(suite.glimpse.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'glm-4.6v-flash', messages: [{ role: 'user', content: 'hi' }], ...body }),
      });
    for (const [body, param] of [
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ tools: [weather], tool_choice: { type: 'function', function: { name: 'book_flight' } } }, 'tool_choice'],
      [{ tools: [{ type: 'function', function: { name: 'bad name!' } }] }, 'tools.0.function.name'],
      [{ tools: 'get_weather' }, 'tools'],
      [
        {
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'tool', content: '42' },
          ],
        },
        'messages.1.tool_call_id',
      ],
      [
        {
          messages: [
            {
              role: 'user',
              content: 'hi',
              tool_calls: [{ id: 'x', type: 'function', function: { name: 'f', arguments: '{}' } }],
            },
          ],
        },
        'messages.0.tool_calls',
      ],
    ] as const) {
      const res = await post(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const err = ((await res.json()) as { error: { code: string; param: string } }).error;
      assert.equal(err.code, 'invalid_request', JSON.stringify(body));
      assert.equal(err.param, param, JSON.stringify(body));
    }
    assert.equal(suite.vllm.requests.length, before);
  });
});

test('engines without tool support refuse tools, response_format and tool history with 400 tools_unsupported', async () => {
  const g = await startGlimpse({ engine: 'simulated' });
  try {
    const client = new OpenAI({ baseURL: g.url + '/v1', apiKey: 'unused', maxRetries: 0 });
    const cases: Array<[Partial<Parameters<typeof client.chat.completions.create>[0]>, string]> = [
      [{ tools: [weather] }, 'tools'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [
        {
          messages: [
            { role: 'user', content: 'hi' },
            {
              role: 'assistant',
              content: null,
              tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }],
            },
            { role: 'tool', tool_call_id: 'c1', content: '18' },
          ],
        },
        'tool messages',
      ],
    ];
    for (const [extra, param] of cases) {
      await assert.rejects(
        client.chat.completions.create({
          model: 'glimpse-simulated',
          messages: [{ role: 'user', content: 'hi' }],
          ...extra,
        } as Parameters<typeof client.chat.completions.create>[0]),
        (err: InstanceType<typeof OpenAI.APIError>) => {
          assert.equal(err.status, 400);
          assert.equal(err.code, 'tools_unsupported');
          assert.equal(err.param, param);
          assert.match(err.message, /upstream server/);
          return true;
        },
      );
    }
    // Without tools, the same engine answers.
    const ok = await client.chat.completions.create({
      model: 'glimpse-simulated',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      response_format: { type: 'text' },
    });
    assert.ok(ok.choices[0]!.message.content);
  } finally {
    await g.close();
  }
});
