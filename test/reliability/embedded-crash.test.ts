/**
 * The embedded worker crashing, seen from a client over HTTP: the streaming request in flight
 * reads an engine_error event then [DONE] (never a silent or hung stream), the slot is freed, a
 * request sent during the restart is refused at once (503 model_loading, Retry-After), and the
 * restarted worker answers the next one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { solidPng, type EmbeddedEngine } from '../../src/engines/embedded/index.js';
import { startGlimpse } from '../helpers/glimpse.js';
import { sseData, waitFor } from '../helpers/wait.js';

const FIXTURE = new URL('../../fixtures/tiny-vlm', import.meta.url).pathname;
const image = `data:image/png;base64,${solidPng(64, 48, [200, 40, 40]).toString('base64')}`;
const body = (maxTokens: number, stream: boolean) =>
  JSON.stringify({
    stream,
    max_tokens: maxTokens,
    temperature: 0,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: image } },
          { type: 'text', text: 'What is in this picture?' },
        ],
      },
    ],
  });

test('embedded worker crash mid-stream: the client reads engine_error then [DONE], the slot is freed, a request during the restart gets 503 model_loading, the restarted worker answers the next one', async (t) => {
  const g = await startGlimpse({ engine: 'embedded', modelPath: FIXTURE });
  t.after(() => g.close());
  const engine = g.engine as unknown as EmbeddedEngine;
  const res = await fetch(g.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body(1500, true),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let crashed = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (!crashed && /"content":"[^"]/.test(text)) {
      crashed = true;
      engine.simulateWorkerCrash(0);
    }
  }
  assert.ok(crashed, 'tokens arrived before the crash');
  const data = sseData(text);
  assert.equal(data.at(-1), '[DONE]');
  assert.equal((JSON.parse(data.at(-2)!) as { error: { code: string } }).error.code, 'engine_error');
  await waitFor(() => g.pipeline.stats().inFlight === 0, 'slot freed');
  // While the worker restarts, a new request is refused at once with a reason, not left hanging.
  if (!engine.health().ready) {
    const during = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body(3, false),
    });
    assert.equal(during.status, 503);
    assert.equal(((await during.json()) as { error: { code: string } }).error.code, 'model_loading');
    assert.match(during.headers.get('retry-after') ?? '', /^\d+$/);
  }
  await waitFor(() => engine.health().ready, 'the restarted worker to be ready', 60_000);
  const next = await fetch(g.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body(3, false),
  });
  assert.equal(next.status, 200);
  assert.equal(((await next.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens, 3);
});
