import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GlimpseError, isGlimpseError } from '../../src/core/index.js';
import { glmRequest, glmSampling, inferRequest } from '../../src/protocols/glm-web/request.js';
import { apiInferSseEncoder, inferErrorBody, multimodalCompletion } from '../../src/protocols/glm-web/encode.js';
import { defaults, origin, sseRecorder } from './recorder.js';

const code = (c: string, param?: string) => (err: unknown) =>
  isGlimpseError(err) && err.code === c && (param === undefined || err.param === param);
const PNG = 'data:image/png;base64,iVBORw0KGgo=';

test("GLM sampling without max_new_tokens takes the operator's defaultMaxTokens; temperature 0.7 and top_p 1 by default", () => {
  assert.deepEqual(glmSampling({}, defaults), { maxTokens: 7, temperature: 0.7, topP: 1, stop: [] });
  assert.equal(glmSampling({ max_tokens: 9 }, defaults).maxTokens, 9);
});

test('GLM sampling from multipart strings is read as numbers and checked against the bounds', () => {
  assert.deepEqual(
    glmSampling({ max_new_tokens: '12', temperature: '0', top_p: '0.5' }, defaults, { fromStrings: true }),
    { maxTokens: 12, temperature: 0, topP: 0.5, stop: [] },
  );
  assert.throws(
    () => glmSampling({ max_new_tokens: '101' }, defaults, { fromStrings: true }),
    code('invalid_max_tokens', 'max_new_tokens'),
  );
  assert.throws(() => glmSampling({ max_new_tokens: '12' }, defaults), code('invalid_max_tokens'));
  assert.throws(() => glmSampling({ temperature: 3 }, defaults), code('invalid_temperature'));
  assert.throws(() => glmSampling({ top_p: 0 }, defaults), code('invalid_top_p'));
});

test('a JSON GLM body is one user turn, image first; the default model unless one is named; the seed kept', () => {
  const req = glmRequest({ prompt: 'what?', seed: 3 }, { value: PNG, param: 'image' }, origin, defaults);
  assert.equal(req.model, 'default-model');
  assert.equal(req.sampling.seed, 3);
  assert.deepEqual(
    req.messages.map((m) => m.content.map((p) => p.type)),
    [['image', 'text']],
  );
  assert.equal(
    glmRequest({ prompt: 'x', model: 'other' }, { value: PNG, param: 'image' }, origin, defaults).model,
    'other',
  );
  assert.throws(
    () => glmRequest({ prompt: 'x' }, { value: 'ftp://a/b.png', param: 'image_url' }, origin, defaults),
    code('invalid_image_url', 'image_url'),
  );
});

test('multipart /infer fields: an image is needed, then a prompt within maxPromptChars (question is another name)', () => {
  assert.throws(() => inferRequest({ prompt: 'x' }, undefined, origin, defaults), code('missing_image'));
  assert.throws(() => inferRequest({}, { kind: 'base64', data: 'AAAA' }, origin, defaults), code('missing_prompt'));
  assert.throws(
    () => inferRequest({ prompt: 'x'.repeat(51) }, { kind: 'base64', data: 'AAAA' }, origin, defaults),
    code('invalid_request', 'prompt'),
  );
  const req = inferRequest({ question: ' hi ', image: PNG }, undefined, origin, defaults);
  assert.equal((req.messages[0]!.content[1] as { text: string }).text, 'hi');
  assert.equal(req.sampling.maxTokens, 7);
});

test('GLM answers: multimodal.completion, /infer errors in their own shape, /api/v1/infer text pieces then [END]', async () => {
  const body = multimodalCompletion('m', {
    text: 'red',
    reasoning: '',
    usage: { promptTokens: 4, completionTokens: 1 },
    finishReason: 'stop',
  });
  assert.equal(body.object, 'multimodal.completion');
  assert.deepEqual(body.choices[0], {
    index: 0,
    message: { role: 'assistant', content: 'red' },
    finish_reason: 'stop',
  });
  assert.deepEqual(inferErrorBody(new GlimpseError('missing_image', 'send one'), 0.25), {
    result: null,
    code: 400,
    error_code: 'missing_image',
    msg: 'send one',
    cost_time: 0.25,
  });
  const { sse, frames } = sseRecorder();
  const apiInfer = apiInferSseEncoder();
  await apiInfer.event(sse, { type: 'reasoning', text: 'hidden' });
  await apiInfer.event(sse, { type: 'token', text: 'red' });
  await apiInfer.error(sse, new GlimpseError('idle_timeout', 'quiet'));
  assert.deepEqual(
    frames.map((f) => f.data),
    ['red', JSON.stringify({ error: { message: 'quiet', type: 'server_error', param: null, code: 'idle_timeout' } })],
  );
  assert.equal(apiInfer.terminator, '[END]');
});
