/**
 * The OpenAI Responses API through the official openai SDK: client.responses.create (whole and
 * streamed) and suite.client.responses.stream(...).finalResponse(), whose accumulator checks that the
 * event sequence builds the same response object; reasoning items from a thinking upstream; the
 * incomplete and failed endings; what is refused and why.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RED_PIXEL_PNG } from '../helpers/glimpse.js';
import { upstreamSuite } from '../helpers/upstream-suite.js';

describe('POST /v1/responses', () => {
  const suite = upstreamSuite({ before, after }, { cache: { enabled: false } });
  const input = [
    {
      role: 'user' as const,
      content: [
        { type: 'input_image' as const, image_url: RED_PIXEL_PNG, detail: 'auto' as const },
        { type: 'input_text' as const, text: 'What is this?' },
      ],
    },
  ];

  test('whole: a response object with a reasoning item and a message; the SDK reads output_text; instructions and limits reach the model', async () => {
    suite.script = { reasoning: ['Red', ' pixels.'], content: ['A red', ' square.'] };
    const res = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      instructions: 'Answer briefly.',
      input,
      max_output_tokens: 40,
      temperature: 0.2,
    });
    assert.equal(res.object, 'response');
    assert.equal(res.status, 'completed');
    assert.equal(res.output_text, 'A red square.');
    assert.deepEqual(
      res.output.map((o) => o.type),
      ['reasoning', 'message'],
    );
    const reasoning = res.output[0] as { content?: Array<{ text: string }> };
    assert.equal(reasoning.content?.[0]?.text, 'Red pixels.');
    assert.deepEqual(
      res.usage && [
        res.usage.input_tokens > 0,
        res.usage.output_tokens,
        res.usage.total_tokens === res.usage.input_tokens + res.usage.output_tokens,
      ],
      [true, 4, true],
    );
    const sent = suite.vllm.lastChatBody();
    assert.deepEqual(sent.messages[0], { role: 'system', content: 'Answer briefly.' });
    assert.equal(
      sent.messages[1].content[0].type,
      'image_url',
      'the image went through the image pipeline to the upstream',
    );
    assert.deepEqual([sent.max_tokens, sent.temperature], [40, 0.2]);
  });

  test('streamed: typed events in order with sequence numbers, and the SDK accumulator builds the same response', async () => {
    suite.script = { reasoning: ['Thinking.'], content: ['A red', ' square', '.'] };
    const stream = await suite.client.responses.create({ model: 'glm-4.6v-flash', input, stream: true });
    const types: string[] = [];
    const seqs: number[] = [];
    let text = '';
    for await (const ev of stream) {
      types.push(ev.type);
      seqs.push(ev.sequence_number);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    assert.equal(text, 'A red square.');
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i),
      'sequence numbers count up from 0',
    );
    assert.deepEqual(types.slice(0, 3), ['response.created', 'response.in_progress', 'response.output_item.added']);
    assert.equal(types.at(-1), 'response.completed');
    for (const t of [
      'response.reasoning_text.delta',
      'response.content_part.added',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
    ])
      assert.ok(types.includes(t), t);

    const final = await suite.client.responses.stream({ model: 'glm-4.6v-flash', input }).finalResponse();
    assert.equal(final.status, 'completed');
    assert.equal(final.output_text, 'A red square.');
    assert.deepEqual(
      final.output.map((o) => o.type),
      ['reasoning', 'message'],
    );
    assert.equal((final.output[0] as { content?: Array<{ text: string }> }).content?.[0]?.text, 'Thinking.');
  });

  test('a plain string input works; running out of max_output_tokens ends as incomplete', async () => {
    suite.script = { reasoning: [], content: ['one', ' two'], finishReason: 'length' };
    const res = await suite.client.responses.create({ model: 'glm-4.6v-flash', input: 'Count.', max_output_tokens: 2 });
    assert.equal(res.status, 'incomplete');
    assert.deepEqual(res.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(res.output_text, 'one two');
    const types: string[] = [];
    for await (const ev of await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      input: 'Count.',
      max_output_tokens: 2,
      stream: true,
    }))
      types.push(ev.type);
    assert.equal(types.at(-1), 'response.incomplete');
  });

  test('an upstream that dies mid-answer ends the stream with response.failed carrying the error', async () => {
    suite.script = { reasoning: [], content: ['A', ' red', ' square'], dieAfter: 1 };
    const events: Array<{ type: string; response?: { status: string; error: { code: string } | null } }> = [];
    for await (const ev of await suite.client.responses.create({ model: 'glm-4.6v-flash', input, stream: true }))
      events.push(ev as never);
    const last = events.at(-1)!;
    assert.equal(last.type, 'response.failed');
    assert.equal(last.response?.status, 'failed');
    assert.equal(last.response?.error?.code, 'upstream_error');
  });

  const weather = {
    type: 'function' as const,
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    strict: false,
  };

  test("function tools: the model's calls come back as function_call items (no message item), the tools reach the upstream in the chat shape", async () => {
    suite.script = { reasoning: [], content: [], toolCalls: [{ name: 'get_weather', arguments: '{"city": "Paris"}' }] };
    const res = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      input,
      tools: [weather],
      tool_choice: 'auto',
    });
    assert.equal(res.status, 'completed');
    assert.deepEqual(
      res.output.map((o) => o.type),
      ['function_call'],
    );
    const call = res.output[0] as { call_id: string; name: string; arguments: string };
    assert.match(call.call_id, /^chatcmpl-tool-/);
    assert.deepEqual([call.name, JSON.parse(call.arguments)], ['get_weather', { city: 'Paris' }]);
    const sent = suite.vllm.lastChatBody();
    assert.deepEqual(sent.tools, [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Current weather in a city',
          parameters: weather.parameters,
          strict: false,
        },
      },
    ]);
    assert.equal(sent.tool_choice, 'auto');
  });

  test('streamed function calls: arguments arrive as function_call_arguments deltas and the SDK accumulator assembles them', async () => {
    suite.script = {
      reasoning: [],
      content: [],
      toolCalls: [
        { name: 'get_weather', arguments: ['{"city": ', '"Oslo"}'] },
        { name: 'get_weather', arguments: '{"city": "Rome"}' },
      ],
    };
    const stream = suite.client.responses.stream({ model: 'glm-4.6v-flash', input, tools: [weather] });
    const deltas: string[] = [];
    stream.on('response.function_call_arguments.delta', (ev) => deltas.push(ev.delta));
    const final = await stream.finalResponse();
    assert.ok(deltas.length >= 3);
    const calls = final.output.map((o) => (o.type === 'function_call' ? JSON.parse(o.arguments).city : o.type));
    assert.deepEqual(calls, ['Oslo', 'Rome']);
  });

  test('the next turn carries function_call and function_call_output items; they reach the upstream as assistant tool_calls and tool messages', async () => {
    suite.script = { reasoning: [], content: ['18 °C in Paris.'] };
    const res = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      tools: [weather],
      // As clients send a turn back (...response.output): the model's reasoning item comes along and is left out.
      input: [
        ...input,
        {
          type: 'reasoning',
          id: 'rs_1',
          summary: [],
          content: [{ type: 'reasoning_text', text: 'Weather needed.' }],
        } as never,
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city": "Paris"}' },
        { type: 'function_call', call_id: 'call_2', name: 'get_weather', arguments: '{"city": "Lyon"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '{"temp_c": 18}' },
        { type: 'function_call_output', call_id: 'call_2', output: '{"temp_c": 21}' },
      ],
    });
    assert.equal(res.output_text, '18 °C in Paris.');
    const sent = suite.vllm.lastChatBody().messages;
    assert.deepEqual(sent.slice(1), [
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } },
          { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Lyon"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp_c": 18}' },
      { role: 'tool', tool_call_id: 'call_2', content: '{"temp_c": 21}' },
    ]);
  });

  test('structured output: text.format reaches the upstream as response_format, and the response says which format it answered in', async () => {
    suite.script = { reasoning: [], content: ['{"colour": ', '"red"}'] };
    const schema = {
      type: 'object',
      properties: { colour: { type: 'string' } },
      required: ['colour'],
      additionalProperties: false,
    };
    const res = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      input,
      text: { format: { type: 'json_schema', name: 'colour', schema, strict: true, description: 'The main colour' } },
    });
    assert.deepEqual(JSON.parse(res.output_text), { colour: 'red' });
    assert.deepEqual(suite.vllm.lastChatBody().response_format, {
      type: 'json_schema',
      json_schema: { name: 'colour', schema, strict: true, description: 'The main colour' },
    });
    assert.deepEqual(res.text?.format, {
      type: 'json_schema',
      name: 'colour',
      schema,
      strict: true,
      description: 'The main colour',
    });

    await suite.client.responses.create({ model: 'glm-4.6v-flash', input, text: { format: { type: 'json_object' } } });
    assert.deepEqual(suite.vllm.lastChatBody().response_format, { type: 'json_object' });
    const plain = await suite.client.responses.create({
      model: 'glm-4.6v-flash',
      input,
      text: { format: { type: 'text' } },
    });
    assert.equal(suite.vllm.lastChatBody().response_format, undefined, 'plain text asks the upstream for no format');
    assert.deepEqual(plain.text?.format, { type: 'text' });

    // Streamed, the final response carries the format too.
    const streamed = await suite.client.responses
      .stream({ model: 'glm-4.6v-flash', input, text: { format: { type: 'json_object' } } })
      .finalResponse();
    assert.deepEqual(streamed.text?.format, { type: 'json_object' });
  });

  test('what is not kept or served here is refused with 400 naming the field', async () => {
    for (const [extra, param] of [
      [{ previous_response_id: 'resp_123' }, 'previous_response_id'],
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ tools: [{ type: 'function', name: 'bad name' }] }, 'tools.0.name'],
      [
        { input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1' }] }] },
        'input.0.content.0.image_url',
      ],
      [
        { input: [{ role: 'assistant', content: [{ type: 'input_image', image_url: RED_PIXEL_PNG }] }] },
        'input.0.content.0',
      ],
      [{ input: '' }, 'input'],
      [{ reasoning: { effort: 'extreme' } }, 'reasoning.effort'],
      [{ text: { format: { type: 'json_schema', schema: {} } } }, 'text.format.name'],
      [{ text: { format: { type: 'json_schema', name: 'has space', schema: {} } } }, 'text.format.name'],
      [{ text: { format: { type: 'yaml' } } }, 'text.format.type'],
      [{ input: [{ type: 'function_call', call_id: 'call_1', arguments: '{}' }] }, 'input.0.name'],
      [{ text: 'json' }, 'text'],
    ] as const) {
      const res = await fetch(suite.glimpse.url + '/v1/responses', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'glm-4.6v-flash', input: 'hi', ...extra }),
      });
      assert.equal(res.status, 400, JSON.stringify(extra));
      const err = ((await res.json()) as { error: { param: string } }).error;
      assert.equal(err.param, param, JSON.stringify(extra));
    }
  });
});

test('a streamed response refused after waiting in the queue still opens with response.created, then response.failed', async () => {
  const { startGlimpse } = await import('../helpers/glimpse.js');
  const g = await startGlimpse({
    engine: 'simulated',
    maxInFlight: 1,
    maxQueue: 4,
    queueTimeout: 0.2,
    simulated: { ttftMs: 1, tokensPerSecond: 10, answerTokens: 10 },
  });
  try {
    const holding = fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true }),
    }).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(g.url + '/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'hi', stream: true }),
    });
    const events = (await res.text())
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { type: string; response?: { error?: { code: string } } });
    assert.equal(events[0]!.type, 'response.created');
    assert.equal(events.at(-1)!.type, 'response.failed');
    assert.equal(events.at(-1)!.response?.error?.code, 'queue_timeout');
    await holding;
  } finally {
    await g.close();
  }
});
