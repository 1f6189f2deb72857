import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectAnswer } from '../../src/streaming/index.js';
import { GlimpseError, type GenerateEvent } from '../../src/core/index.js';

async function* events(list: GenerateEvent[]) {
  yield* list;
}

test('a finished stream collects into text, reasoning, usage and finish reason', async () => {
  const a = await collectAnswer(
    events([
      { type: 'reasoning', text: 'hm' },
      { type: 'token', text: 'a' },
      { type: 'token', text: 'b' },
      { type: 'usage', usage: { promptTokens: 3, completionTokens: 2 } },
      { type: 'done', finishReason: 'length' },
    ]),
  );
  assert.deepEqual(a, {
    text: 'ab',
    reasoning: 'hm',
    usage: { promptTokens: 3, completionTokens: 2 },
    finishReason: 'length',
  });
});

test('a stream the client abandoned is client_closed (499), not a server error', async () => {
  await assert.rejects(
    collectAnswer(
      events([
        { type: 'token', text: 'a' },
        { type: 'done', finishReason: 'cancelled' },
      ]),
    ),
    (e: unknown) => e instanceof GlimpseError && e.code === 'client_closed' && e.status === 499,
  );
});

test('an error event is thrown as it is; an empty answer is empty_completion; a stream with no end is engine_error', async () => {
  await assert.rejects(
    collectAnswer(events([{ type: 'error', error: new GlimpseError('upstream_error', 'x') }])),
    (e: unknown) => (e as GlimpseError).code === 'upstream_error',
  );
  await assert.rejects(
    collectAnswer(events([{ type: 'done', finishReason: 'stop' }])),
    (e: unknown) => (e as GlimpseError).code === 'empty_completion',
  );
  await assert.rejects(
    collectAnswer(events([{ type: 'token', text: 'a' }])),
    (e: unknown) => (e as GlimpseError).code === 'engine_error',
  );
});
