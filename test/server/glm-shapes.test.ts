import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RED_PIXEL_PNG, startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';

const PNG_BYTES = Buffer.from(RED_PIXEL_PNG.split(',')[1]!, 'base64');

describe('GLM-4.6V-Flash-WEB shapes on the simulated engine', () => {
  let g: RunningGlimpse;
  before(async () => {
    g = await startGlimpse({ engine: 'simulated', simulated: { ttftMs: 1, tokensPerSecond: 2000, answerTokens: 12 } });
  });
  after(() => g.close());

  const post = (path: string, body: unknown) =>
    fetch(g.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  test('/v1/multimodal/completions answers a multimodal.completion with usage', async () => {
    const res = await post('/v1/multimodal/completions', {
      image: RED_PIXEL_PNG,
      prompt: 'What is it?',
      max_new_tokens: 5,
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.match(body.id, /^cmpl-/);
    assert.equal(body.object, 'multimodal.completion');
    assert.equal(typeof body.created, 'number');
    assert.equal(body.model, 'glimpse-simulated');
    assert.equal(body.choices[0].index, 0);
    assert.equal(body.choices[0].message.role, 'assistant');
    assert.equal(body.choices[0].message.content.split(' ').length, 5);
    assert.equal(body.usage.completion_tokens, 5);
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + 5);
  });

  test('/v1/multimodal/completions takes bare base64 too', async () => {
    const res = await post('/v1/multimodal/completions', { image: PNG_BYTES.toString('base64'), prompt: 'Hi' });
    assert.equal(res.status, 200);
  });

  test('/infer takes a multipart upload and answers {result, code: 0, cost_time}', async () => {
    const form = new FormData();
    form.append('image', new Blob([PNG_BYTES], { type: 'image/png' }), 'red.png');
    form.append('prompt', 'Describe the image');
    const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.code, 0);
    assert.equal(typeof body.result, 'string');
    assert.ok(body.result.length > 0);
    assert.equal(typeof body.cost_time, 'number');
  });

  test('/infer without an image keeps its shape: non-zero code and a msg', async () => {
    const form = new FormData();
    form.append('prompt', 'Describe the image');
    const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.code, 400);
    assert.equal(body.error_code, 'missing_image');
    assert.match(body.msg, /image/);
  });

  test('/infer without a prompt is missing_prompt', async () => {
    const form = new FormData();
    form.append('image', new Blob([PNG_BYTES], { type: 'image/png' }), 'red.png');
    const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error_code, 'missing_prompt');
  });

  for (const [field, value, code] of [
    ['max_new_tokens', 'lots', 'invalid_max_tokens'],
    ['max_new_tokens', '0', 'invalid_max_tokens'],
    ['temperature', '3', 'invalid_temperature'],
    ['top_p', '0', 'invalid_top_p'],
  ] as const) {
    test(`/infer with ${field}=${value} is 400 ${code} in the /infer shape`, async () => {
      const form = new FormData();
      form.append('image', new Blob([PNG_BYTES], { type: 'image/png' }), 'red.png');
      form.append('prompt', 'Describe');
      form.append(field, value);
      const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
      assert.equal(res.status, 400);
      const body = await res.json();
      assert.equal(body.error_code, code);
      assert.equal(body.code, 400);
    });
  }

  test('/infer takes sampling fields as strings', async () => {
    const form = new FormData();
    form.append('image', new Blob([PNG_BYTES], { type: 'image/png' }), 'red.png');
    form.append('prompt', 'Describe');
    form.append('max_new_tokens', '3');
    form.append('temperature', '0');
    const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).result.split(' ').length, 3);
  });

  test('/infer with JSON instead of multipart is 415 in the /infer shape', async () => {
    const res = await post('/infer', { prompt: 'x' });
    assert.equal(res.status, 415);
    const body = await res.json();
    assert.equal(body.error_code, 'unsupported_media_type');
    assert.notEqual(body.code, 0);
  });

  test('/infer with a file that is not an image is refused as invalid_image', async () => {
    const form = new FormData();
    form.append('image', new Blob([Buffer.from('hello, not an image')], { type: 'image/png' }), 'fake.png');
    form.append('prompt', 'Describe');
    const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
    assert.ok(res.status === 415 || res.status === 422, `status ${res.status}`);
    assert.equal((await res.json()).error_code, 'invalid_image');
  });

  test('/v1/chat answers {response}', async () => {
    const res = await post('/v1/chat', { image_url: RED_PIXEL_PNG, prompt: 'Hi' });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(Object.keys(body), ['response']);
    assert.ok(body.response.length > 0);
  });

  test('every JSON GLM shape takes max_tokens as another name for max_new_tokens, and checks it alike', async () => {
    for (const [path, imageField] of [
      ['/v1/multimodal/completions', 'image'],
      ['/v1/chat', 'image_url'],
      ['/api/v1/infer', 'image'],
    ] as const) {
      const res = await post(path, { [imageField]: RED_PIXEL_PNG, prompt: 'Hi', max_tokens: 3 });
      assert.equal(res.status, 200, path);
      const text = await res.text();
      const answer =
        path === '/api/v1/infer'
          ? text
              .split('\n\n')
              .filter((e) => e && e !== 'data: [END]')
              .map((e) => e.replace(/^data: /, ''))
              .join('')
          : path === '/v1/chat'
            ? JSON.parse(text).response
            : JSON.parse(text).choices[0].message.content;
      assert.equal(answer.split(' ').length, 3, `${path}: ${answer}`);
      const bad = await post(path, { [imageField]: RED_PIXEL_PNG, prompt: 'Hi', max_tokens: 'lots' });
      assert.equal(bad.status, 400, path);
      const err = await bad.json();
      assert.equal(err.error.code, 'invalid_max_tokens', path);
      assert.equal(err.error.param, 'max_tokens', path);
    }
  });

  test('/api/v1/infer streams text pieces as SSE and ends with [END]', async () => {
    const res = await post('/api/v1/infer', { image: RED_PIXEL_PNG, prompt: 'Hi', max_new_tokens: 4 });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    const events = (await res.text()).split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [END]');
    const pieces = events.slice(0, -1).map((e) => e.replace(/^data: /, ''));
    assert.equal(pieces.length, 4);
    assert.equal(pieces.join('').split(' ').length, 4);
  });

  test('/health says plainly that the engine is simulated', async () => {
    const res = await fetch(g.url + '/health');
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, 'healthy');
    assert.equal(body.engine, 'simulated');
    assert.equal(body.model_loaded, true);
    assert.equal(body.simulated, true);
    assert.equal(typeof body.device, 'string');
    assert.equal(body.model, 'glimpse-simulated');
  });

  test('/ready is 200 once the engine is ready', async () => {
    const res = await fetch(g.url + '/ready');
    assert.equal(res.status, 200);
  });

  test('/v1/models labels the simulated model', async () => {
    const body = await (await fetch(g.url + '/v1/models')).json();
    assert.equal(body.data[0].simulated, true);
    assert.match(body.data[0].owned_by, /simulated/);
  });

  test('/docs serves the OpenAPI document generated from the request schemas', async () => {
    const doc = await (await fetch(g.url + '/docs/json')).json();
    assert.equal(doc.openapi, '3.1.0');
    const chat = doc.paths['/v1/chat/completions'].post;
    const schema = chat.requestBody.content['application/json'].schema;
    assert.ok(schema.properties.messages, 'messages documented');
    assert.equal(schema.properties.messages.minItems, 1);
    for (const p of [
      '/v1/multimodal/completions',
      '/infer',
      '/v1/chat',
      '/api/v1/infer',
      '/health',
      '/ready',
      '/v1/models',
    ])
      assert.ok(doc.paths[p], p);
    const html = await (await fetch(g.url + '/docs')).text();
    assert.match(html, /swagger/i);
  });
});

describe("the operator's defaultMaxTokens on the GLM-WEB shapes", () => {
  let g: RunningGlimpse;
  before(async () => {
    // Answers run to 12 tokens unless cut: a default of 3 shows as 3-word answers.
    g = await startGlimpse({
      engine: 'simulated',
      defaultMaxTokens: 3,
      simulated: { ttftMs: 1, tokensPerSecond: 2000, answerTokens: 12 },
    });
  });
  after(() => g.close());

  const post = (path: string, body: unknown) =>
    fetch(g.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const words = (text: string) => text.trim().split(/\s+/).length;

  test('/v1/multimodal/completions without max_new_tokens stops at defaultMaxTokens', async () => {
    const body = await (await post('/v1/multimodal/completions', { image: RED_PIXEL_PNG, prompt: 'Hi' })).json();
    assert.equal(body.usage.completion_tokens, 3);
    assert.equal(body.choices[0].finish_reason, 'length');
  });

  test('/v1/chat without max_new_tokens stops at defaultMaxTokens', async () => {
    const body = await (await post('/v1/chat', { image_url: RED_PIXEL_PNG, prompt: 'Hi' })).json();
    assert.equal(words(body.response), 3);
  });

  test('/api/v1/infer without max_new_tokens streams defaultMaxTokens pieces', async () => {
    const text = await (await post('/api/v1/infer', { image: RED_PIXEL_PNG, prompt: 'Hi' })).text();
    const pieces = text.split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [END]');
    assert.equal(pieces.length, 3, text);
  });

  test('/infer without max_new_tokens stops at defaultMaxTokens', async () => {
    const form = new FormData();
    form.append('image', new Blob([PNG_BYTES], { type: 'image/png' }), 'red.png');
    form.append('prompt', 'Hi');
    const body = await (await fetch(g.url + '/infer', { method: 'POST', body: form })).json();
    assert.equal(body.code, 0);
    assert.equal(words(body.result), 3);
  });
});
