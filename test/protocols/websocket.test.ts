import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GlimpseError, isGlimpseError } from '../../src/core/index.js';
import { wsRequest } from '../../src/protocols/websocket/request.js';
import { errorBody, wsEncoder } from '../../src/protocols/websocket/encode.js';
import { defaults, origin } from './recorder.js';

const code = (c: string) => (err: unknown) => isGlimpseError(err) && err.code === c;

test('a WebSocket request message: prompt required and bounded, image/system/model strings, thinking as given, defaults otherwise', () => {
  const req = wsRequest({ type: 'request', prompt: 'hi', system: 'be brief', thinking: false }, origin, defaults);
  assert.equal(req.model, 'default-model');
  assert.equal(req.sampling.maxTokens, 7);
  assert.equal(req.thinking, false);
  assert.deepEqual(
    req.messages.map((m) => m.role),
    ['system', 'user'],
  );
  assert.throws(() => wsRequest({ type: 'request' }, origin, defaults), code('missing_prompt'));
  assert.throws(
    () => wsRequest({ type: 'request', prompt: 'x'.repeat(51) }, origin, defaults),
    code('invalid_request'),
  );
  assert.throws(
    () => wsRequest({ type: 'request', prompt: 'hi', image: 5 }, origin, defaults),
    code('invalid_image_url'),
  );
  assert.throws(
    () => wsRequest({ type: 'request', prompt: 'hi', model: 5 }, origin, defaults),
    code('invalid_request'),
  );
});

test('the WebSocket encoder: queued, start with the wait and cache status, text, done with the usage held back', () => {
  const encode = wsEncoder('a', 'm', 'miss');
  const out = [
    encode({ type: 'queued', position: 2 }),
    encode({ type: 'admitted', waitedMs: 12.4, queuedAt: 2 }),
    encode({ type: 'token', text: 'Hi' }),
    encode({ type: 'usage', usage: { promptTokens: 3, completionTokens: 1 } }),
    encode({ type: 'done', finishReason: 'stop' }),
  ];
  assert.deepEqual(out, [
    { type: 'queued', id: 'a', position: 2 },
    { type: 'start', id: 'a', model: 'm', queue_wait_ms: 12, cache: 'miss' },
    { type: 'token', id: 'a', text: 'Hi' },
    undefined,
    {
      type: 'done',
      id: 'a',
      finish_reason: 'stop',
      usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
    },
  ]);
});

test("WebSocket's error body carries retry_after from the error's number, and none when there is none", () => {
  assert.deepEqual(errorBody('a', new GlimpseError('rate_limited', 'slow down', { retryAfterSeconds: 3 })), {
    type: 'error',
    id: 'a',
    error: { code: 'rate_limited', message: 'slow down', status: 429, retry_after: 3 },
  });
  assert.deepEqual(errorBody(null, new GlimpseError('invalid_json', 'bad')), {
    type: 'error',
    id: null,
    error: { code: 'invalid_json', message: 'bad', status: 400 },
  });
  // Callers that still give Retry-After as a header have it read once, into the number.
  assert.equal(new GlimpseError('queue_full', 'full', { headers: { 'Retry-After': '7' } }).retryAfterSeconds, 7);
});
