import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GlimpseError, isGlimpseError } from '../../src/core/index.js';
import { chatRequest } from '../../src/protocols/openai-chat/request.js';
import { chatChunk, chatSseEncoder, errorBody } from '../../src/protocols/openai-chat/encode.js';
import type { ChatBody } from '../../src/protocols/openai-chat/schema.js';
import { defaults, origin, sseRecorder } from './recorder.js';

const code = (c: string) => (err: unknown) => isGlimpseError(err) && err.code === c;

test('a chat body without model or max_tokens takes the defaults; developer is system; the origin is kept', () => {
  const req = chatRequest(
    {
      messages: [
        { role: 'developer', content: 'be brief' },
        { role: 'user', content: 'hi' },
      ],
    },
    origin,
    defaults,
  );
  assert.equal(req.model, 'default-model');
  assert.equal(req.sampling.maxTokens, 7);
  assert.deepEqual(
    req.messages.map((m) => m.role),
    ['system', 'user'],
  );
  assert.equal(req.id, 'req-1');
  assert.equal(req.keyId, 'key-1');
});

test('max_completion_tokens wins over max_tokens; stop as a string becomes a list; neutral penalties are left out', () => {
  const req = chatRequest(
    {
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      max_completion_tokens: 5,
      stop: 'END',
      presence_penalty: 0,
      top_k: 4,
    },
    origin,
    defaults,
  );
  assert.equal(req.sampling.maxTokens, 5);
  assert.deepEqual(req.sampling.stop, ['END']);
  assert.equal(req.sampling.presencePenalty, undefined);
  assert.equal(req.sampling.topK, 4);
});

test('image parts become image sources; an image outside a user message is refused naming the message', () => {
  const req = chatRequest(
    {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
            { type: 'text', text: 'what?' },
          ],
        },
      ],
    },
    origin,
    defaults,
  );
  assert.deepEqual(req.messages[0]!.content[0], {
    type: 'image',
    source: { kind: 'url', url: 'https://example.com/a.png' },
  });
  assert.throws(
    () =>
      chatRequest(
        {
          messages: [
            { role: 'assistant', content: [{ type: 'image_url', image_url: 'https://example.com/a.png' }] },
            { role: 'user', content: 'hi' },
          ],
        },
        origin,
        defaults,
      ),
    (err: unknown) => isGlimpseError(err) && err.code === 'invalid_request' && err.param === 'messages.0',
  );
});

test('a tool result needs its tool_call_id; a conversation without user content is empty_messages', () => {
  assert.throws(
    () =>
      chatRequest(
        {
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'tool', content: '42' },
          ] as ChatBody['messages'],
        },
        origin,
        defaults,
      ),
    code('invalid_request'),
  );
  assert.throws(
    () => chatRequest({ messages: [{ role: 'system', content: 'x' }] }, origin, defaults),
    code('empty_messages'),
  );
});

test('the chat SSE encoder writes the role chunk, the pieces, the finish chunk and (asked for) the usage chunk, then [DONE]', async () => {
  const { sse, json } = sseRecorder();
  const enc = chatSseEncoder({ id: 'c1', created: 1, model: 'm' }, { logprobs: false, includeUsage: true });
  await enc.start!(sse);
  await enc.event(sse, { type: 'reasoning', text: 'hm' });
  await enc.event(sse, { type: 'token', text: 'Hi' });
  await enc.event(sse, { type: 'usage', usage: { promptTokens: 2, completionTokens: 1 } });
  await enc.event(sse, { type: 'done', finishReason: 'length' });
  const chunks = json() as Array<{ choices: Array<{ delta: unknown; finish_reason: string | null }>; usage?: unknown }>;
  assert.deepEqual(
    chunks.map((c) => c.choices[0]?.delta ?? 'usage'),
    [{ role: 'assistant', content: '' }, { reasoning_content: 'hm' }, { content: 'Hi' }, { content: '' }, 'usage'],
  );
  assert.equal(chunks[3]!.choices[0]!.finish_reason, 'length');
  assert.deepEqual(chunks[4]!.usage, { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 });
  assert.equal(enc.terminator, '[DONE]');
});

test('a token chunk is byte for byte what JSON.stringify of the chunk object gives, whatever the text and the names', async () => {
  const texts = ['Hi', '', '"quoted" \\ back', 'line\nbreak\r\n', '你好 😀', '\u2028\u0000</script>', '{"content":""}'];
  for (const meta of [
    { id: 'chatcmpl-1', created: 1_700_000_000, model: 'zai-org/GLM-4.6V-Flash' },
    { id: 'c"2', created: 0, model: '{"content":""}' },
  ]) {
    const { sse, frames } = sseRecorder();
    const enc = chatSseEncoder(meta, { logprobs: false, includeUsage: false });
    for (const text of texts) await enc.event(sse, { type: 'token', text });
    assert.deepEqual(
      frames.map((f) => f.data),
      texts.map((content) => JSON.stringify(chatChunk(meta, { content }))),
    );
  }
});

test('a cancelled stream writes no finish chunk; an error is the OpenAI error body', async () => {
  const { sse, json } = sseRecorder();
  const enc = chatSseEncoder({ id: 'c1', created: 1, model: 'm' }, { logprobs: false, includeUsage: false });
  await enc.event(sse, { type: 'done', finishReason: 'cancelled' });
  await enc.error(sse, new GlimpseError('queue_timeout', 'waited too long'));
  assert.deepEqual(json(), [
    { error: { message: 'waited too long', type: 'server_error', param: null, code: 'queue_timeout' } },
  ]);
  assert.deepEqual(errorBody(new GlimpseError('invalid_max_tokens', 'no', { param: 'max_tokens' })), {
    error: { message: 'no', type: 'invalid_request_error', param: 'max_tokens', code: 'invalid_max_tokens' },
  });
});
