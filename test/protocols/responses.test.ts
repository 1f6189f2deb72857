import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GlimpseError, isGlimpseError } from '../../src/core/index.js';
import { responsesRequest } from '../../src/protocols/responses/request.js';
import { responsesSseEncoder, type Meta } from '../../src/protocols/responses/encode.js';
import type { InputItem, ResponsesBody } from '../../src/protocols/responses/schema.js';
import { defaults, origin, sseRecorder } from './recorder.js';

const map = (b: ResponsesBody, items = b.input as InputItem[]) => responsesRequest(b, items, 0, origin, defaults);

test('Responses input: instructions first as system, the default model and max tokens, reasoning effort none is no thinking', () => {
  const b: ResponsesBody = {
    input: [{ role: 'user', content: 'hi' }],
    instructions: 'be brief',
    reasoning: { effort: 'none' },
  };
  const req = map(b);
  assert.deepEqual(
    req.messages.map((m) => m.role),
    ['system', 'user'],
  );
  assert.equal(req.model, 'default-model');
  assert.equal(req.sampling.maxTokens, 7);
  assert.equal(req.thinking, false);
});

test('function calls of one turn are one assistant message; their outputs are tool messages; text.format is chat response_format', () => {
  const b: ResponsesBody = {
    input: [
      { role: 'user', content: 'weather?' },
      { type: 'function_call', call_id: 'c1', name: 'w', arguments: '{}' },
      { type: 'function_call', call_id: 'c2', name: 'w', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c1', output: 'sun' },
    ],
    text: { format: { type: 'json_schema', name: 'out', schema: { type: 'object' } } },
  };
  const req = map(b);
  assert.deepEqual(
    req.messages.map((m) => [m.role, m.toolCalls?.length ?? 0, m.toolCallId ?? null]),
    [
      ['user', 0, null],
      ['assistant', 2, null],
      ['tool', 0, 'c1'],
    ],
  );
  assert.deepEqual(req.toolOptions?.responseFormat, {
    type: 'json_schema',
    json_schema: { name: 'out', schema: { type: 'object' } },
  });
});

test('an input image outside a user message is refused; a user image without image_url is missing_image', () => {
  const bad =
    (content: unknown, role = 'user') =>
    () =>
      map({ input: [{ role, content } as InputItem, { role: 'user', content: 'hi' }] });
  assert.throws(
    bad([{ type: 'input_image', image_url: 'https://example.com/a.png' }], 'assistant'),
    (e: unknown) => isGlimpseError(e) && e.code === 'invalid_request',
  );
  assert.throws(
    bad([{ type: 'input_image' }]),
    (e: unknown) => isGlimpseError(e) && e.code === 'missing_image' && e.param === 'input.0.content.0.image_url',
  );
});

test('the Responses SSE encoder numbers its events and ends with response.completed holding the message', async () => {
  const meta: Meta = {
    id: 'resp_1',
    created: 1,
    model: 'm',
    body: { input: 'hi' },
    store: false,
    summary: false,
    keep: async () => {},
  };
  const { sse, frames, json } = sseRecorder();
  const enc = responsesSseEncoder(meta);
  await enc.start!(sse);
  await enc.event(sse, { type: 'token', text: 'Hi' });
  await enc.event(sse, { type: 'done', finishReason: 'stop' });
  const events = json() as Array<{
    type: string;
    sequence_number: number;
    response?: { status: string; output: Array<{ type: string }> };
  }>;
  assert.deepEqual(
    events.map((e) => e.sequence_number),
    events.map((_, i) => i),
  );
  assert.equal(frames[0]!.event, 'response.created');
  const last = events.at(-1)!;
  assert.equal(last.type, 'response.completed');
  assert.deepEqual(
    last.response!.output.map((o) => o.type),
    ['message'],
  );
});

test('an error before anything was sent still opens with response.created, then response.failed', async () => {
  const meta = {
    id: 'resp_2',
    created: 1,
    model: 'm',
    body: { input: 'hi' },
    store: false,
    summary: false,
    keep: async () => {},
  } satisfies Meta;
  const { sse, json } = sseRecorder();
  await responsesSseEncoder(meta).error(sse, new GlimpseError('queue_timeout', 'waited'));
  const events = json() as Array<{ type: string; response: { error: { code: string } | null } }>;
  assert.deepEqual(
    events.map((e) => e.type),
    ['response.created', 'response.in_progress', 'response.failed'],
  );
  assert.equal(events[2]!.response.error!.code, 'queue_timeout');
});
