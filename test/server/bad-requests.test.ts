import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RED_PIXEL_PNG, startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';

/** Every bad request gets 4xx with a stable code in the route's error shape; none gets a 500. */
describe('bad requests', () => {
  let g: RunningGlimpse;
  before(async () => {
    g = await startGlimpse({ engine: 'simulated', simulated: { ttftMs: 1, tokensPerSecond: 2000 } });
  });
  after(() => g.close());

  const user = (content: unknown) => [{ role: 'user', content }];
  const cases: Array<{
    name: string;
    path: string;
    body: string | object;
    status: number;
    code: string;
    param?: string;
  }> = [
    { name: 'malformed JSON', path: '/v1/chat/completions', body: '{"messages": [', status: 400, code: 'invalid_json' },
    {
      name: 'empty body with a JSON content type',
      path: '/v1/chat/completions',
      body: '',
      status: 400,
      code: 'invalid_json',
    },
    { name: 'a JSON array as body', path: '/v1/chat/completions', body: [], status: 400, code: 'invalid_request' },
    {
      name: 'messages of the wrong type',
      path: '/v1/chat/completions',
      body: { messages: 'hello' },
      status: 400,
      code: 'invalid_request',
      param: 'messages',
    },
    {
      name: 'missing messages',
      path: '/v1/chat/completions',
      body: { model: 'glimpse-simulated' },
      status: 400,
      code: 'empty_messages',
      param: 'messages',
    },
    {
      name: 'empty messages',
      path: '/v1/chat/completions',
      body: { messages: [] },
      status: 400,
      code: 'empty_messages',
      param: 'messages',
    },
    {
      name: 'only a system message',
      path: '/v1/chat/completions',
      body: { messages: [{ role: 'system', content: 'be nice' }] },
      status: 400,
      code: 'empty_messages',
    },
    {
      name: 'an unknown role',
      path: '/v1/chat/completions',
      body: { messages: [{ role: 'wizard', content: 'hi' }] },
      status: 400,
      code: 'invalid_request',
      param: 'messages.0.role',
    },
    {
      name: 'negative max_tokens',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), max_tokens: -1 },
      status: 400,
      code: 'invalid_max_tokens',
      param: 'max_tokens',
    },
    {
      name: 'zero max_tokens',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), max_tokens: 0 },
      status: 400,
      code: 'invalid_max_tokens',
    },
    {
      name: 'absurd max_tokens',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), max_tokens: 1e12 },
      status: 400,
      code: 'invalid_max_tokens',
    },
    {
      name: 'fractional max_tokens',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), max_tokens: 1.5 },
      status: 400,
      code: 'invalid_max_tokens',
    },
    {
      name: 'max_tokens as a string',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), max_tokens: '100' },
      status: 400,
      code: 'invalid_max_tokens',
    },
    {
      name: 'temperature above 2',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), temperature: 2.5 },
      status: 400,
      code: 'invalid_temperature',
      param: 'temperature',
    },
    {
      name: 'negative temperature',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), temperature: -0.1 },
      status: 400,
      code: 'invalid_temperature',
    },
    {
      name: 'temperature as a word',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), temperature: 'hot' },
      status: 400,
      code: 'invalid_temperature',
    },
    {
      name: 'top_p of zero',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), top_p: 0 },
      status: 400,
      code: 'invalid_top_p',
    },
    {
      name: 'unknown model',
      path: '/v1/chat/completions',
      body: { model: 'nope', messages: user('hi') },
      status: 404,
      code: 'model_not_found',
      param: 'model',
    },
    {
      name: 'an image part with a file: URL',
      path: '/v1/chat/completions',
      body: { messages: user([{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }]) },
      status: 400,
      code: 'invalid_image_url',
    },
    {
      name: 'an image part that is not base64',
      path: '/v1/chat/completions',
      body: { messages: user([{ type: 'image_url', image_url: { url: 'not an image at all!' } }]) },
      status: 400,
      code: 'invalid_image_url',
    },
    {
      name: 'an image data URL holding text',
      path: '/v1/chat/completions',
      body: {
        messages: user([
          { type: 'image_url', image_url: { url: 'data:image/png;base64,' + Buffer.from('hello').toString('base64') } },
        ]),
      },
      status: 422,
      code: 'invalid_image',
    },
    {
      name: 'an image in an assistant message',
      path: '/v1/chat/completions',
      body: {
        messages: [
          { role: 'assistant', content: [{ type: 'image_url', image_url: { url: RED_PIXEL_PNG } }] },
          { role: 'user', content: 'hi' },
        ],
      },
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'an unknown content part type',
      path: '/v1/chat/completions',
      body: { messages: user([{ type: 'audio', audio: 'x' }]) },
      status: 400,
      code: 'invalid_request',
      param: 'messages.0.content.0.type',
    },
    // In a union told apart by `type`, the error is about the branch the client chose, not the first one.
    {
      name: 'an image part without its image_url',
      path: '/v1/chat/completions',
      body: { messages: user([{ type: 'image_url' }]) },
      status: 400,
      code: 'invalid_request',
      param: 'messages.0.content.0.image_url',
    },
    {
      name: 'a tool_choice object without its function',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), tool_choice: { type: 'function' } },
      status: 400,
      code: 'invalid_request',
      param: 'tool_choice.function',
    },
    {
      name: 'a json_schema response_format without a name',
      path: '/v1/chat/completions',
      body: { messages: user('hi'), response_format: { type: 'json_schema', json_schema: { schema: {} } } },
      status: 400,
      code: 'invalid_request',
      param: 'response_format.json_schema.name',
    },
    {
      name: 'multimodal without image',
      path: '/v1/multimodal/completions',
      body: { prompt: 'hi' },
      status: 400,
      code: 'missing_image',
      param: 'image',
    },
    {
      name: 'multimodal without prompt',
      path: '/v1/multimodal/completions',
      body: { image: RED_PIXEL_PNG },
      status: 400,
      code: 'missing_prompt',
      param: 'prompt',
    },
    {
      name: 'multimodal with an empty prompt',
      path: '/v1/multimodal/completions',
      body: { image: RED_PIXEL_PNG, prompt: '' },
      status: 400,
      code: 'missing_prompt',
    },
    {
      name: 'multimodal with negative max_new_tokens',
      path: '/v1/multimodal/completions',
      body: { image: RED_PIXEL_PNG, prompt: 'hi', max_new_tokens: -5 },
      status: 400,
      code: 'invalid_max_tokens',
    },
    {
      name: 'multimodal with temperature 100',
      path: '/v1/multimodal/completions',
      body: { image: RED_PIXEL_PNG, prompt: 'hi', temperature: 100 },
      status: 400,
      code: 'invalid_temperature',
    },
    {
      name: 'multimodal with an unknown model',
      path: '/v1/multimodal/completions',
      body: { image: RED_PIXEL_PNG, prompt: 'hi', model: 'x' },
      status: 404,
      code: 'model_not_found',
    },
    {
      name: '/v1/chat without image_url',
      path: '/v1/chat',
      body: { prompt: 'hi' },
      status: 400,
      code: 'missing_image',
      param: 'image_url',
    },
    {
      name: '/v1/chat with a number as prompt',
      path: '/v1/chat',
      body: { image_url: RED_PIXEL_PNG, prompt: 42 },
      status: 400,
      code: 'missing_prompt',
    },
    {
      name: '/api/v1/infer without prompt',
      path: '/api/v1/infer',
      body: { image: RED_PIXEL_PNG },
      status: 400,
      code: 'missing_prompt',
    },
    {
      name: '/api/v1/infer with an ftp image URL',
      path: '/api/v1/infer',
      body: { image: 'ftp://example.com/a.png', prompt: 'hi' },
      status: 400,
      code: 'invalid_image_url',
    },
    { name: 'an unknown route', path: '/v2/whatever', body: {}, status: 404, code: 'not_found' },
  ];

  for (const c of cases) {
    test(`${c.name} → ${c.status} ${c.code}`, async () => {
      const res = await fetch(g.url + c.path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: typeof c.body === 'string' ? c.body : JSON.stringify(c.body),
      });
      const body = await res.json();
      assert.equal(res.status, c.status, JSON.stringify(body));
      assert.equal(body.error.code, c.code, JSON.stringify(body));
      assert.equal(typeof body.error.message, 'string');
      assert.ok(body.error.message.length > 5);
      assert.ok('type' in body.error && 'param' in body.error, 'OpenAI error shape');
      if (c.param) assert.equal(body.error.param, c.param);
    });
  }

  test('a body over the size limit is 413 payload_too_large', async () => {
    const big = 'x'.repeat(g.config.bodyLimit + 10);
    const res = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: user(big) }),
    });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, 'payload_too_large');
  });

  test('a value outside a fixed set is told the whole set, across the branches of a union', async () => {
    const send = async (body: object) =>
      (
        await (
          await fetch(g.url + '/v1/chat/completions', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          })
        ).json()
      ).error;
    const format = await send({ messages: user('hi'), response_format: { type: 'xml' } });
    assert.equal(
      format.message,
      `'response_format.type' must be one of "text", "json_object", "json_schema" (got "xml").`,
    );
    const choice = await send({ messages: user('hi'), tool_choice: 'sometimes' });
    assert.equal(choice.message, `'tool_choice' must be one of "none", "auto", "required" (got "sometimes").`);
  });

  test('bodies of a million wrong array items are refused on their first problem: the server does not collect a million issues (it once took seconds of CPU and hundreds of MB)', async () => {
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    for (const [body, param] of [
      [{ messages: user('hi'), stop: Array.from({ length: 1_000_000 }, () => 5) }, 'stop'],
      [
        {
          messages: user('hi'),
          tools: Array.from({ length: 200_000 }, () => ({ type: 'function', function: { name: 5 } })),
        },
        'tools',
      ],
      [{ messages: Array.from({ length: 200_000 }, () => ({ role: 'wizard', content: 5 })) }, 'messages'],
    ] as const) {
      const res = await fetch(g.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const err = (await res.json()).error;
      assert.equal(res.status, 400);
      assert.equal(err.param, param);
      assert.match(err.message, /must NOT have more than \d+ items/);
      assert.ok(err.message.length < 300, 'the message shows the start of the value, not all of it');
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }
    // Parsing the bodies costs some tens of MB; collecting every issue cost 300-900 MB.
    assert.ok(rssPeak - rssBefore < 200 * 1024 * 1024, `RSS grew ${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MB`);
  });

  test('JSON nested deeper than maxJsonDepth (64) is refused before it is parsed, naming the top-level field: it once overflowed the stack (500) where free-form fields are serialised', async () => {
    const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const hi = JSON.stringify(user('hi'));
    for (const [body, param] of [
      [`{"messages":${hi},"chat_template_kwargs":{"x":${nest(5000)}}}`, 'chat_template_kwargs'],
      [
        `{"messages":${hi},"tools":[{"type":"function","function":{"name":"f","parameters":{"x":${nest(200_000)}}}}]}`,
        'tools',
      ],
      [`{"messages":${hi},"extra":${nest(70)}}`, 'extra'],
      [nest(100_000), null],
    ] as const) {
      const res = await fetch(g.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const err = (await res.json()).error;
      assert.equal(res.status, 400, body.slice(0, 80));
      assert.equal(err.code, 'invalid_request');
      assert.equal(err.param, param);
      assert.match(err.message, /nests objects and arrays deeper than 64 levels/);
    }
    // 64 levels are fine (the body itself is the first).
    const ok = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"messages":${JSON.stringify(user('hi'))},"max_tokens":2,"metadata_like":${nest(63)}}`,
    });
    assert.equal(ok.status, 200);
  });

  test('a text/plain body is 415 unsupported_media_type', async () => {
    const res = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    assert.equal(res.status, 415);
    assert.equal((await res.json()).error.code, 'unsupported_media_type');
  });

  test('the server still answers after all of that', async () => {
    const res = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: user('still there?'), max_tokens: 2 }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.usage.completion_tokens, 2);
    assert.equal(
      body.model,
      'glimpse-simulated',
      'a request that names no model is answered by the default one, and says so',
    );
  });
});
