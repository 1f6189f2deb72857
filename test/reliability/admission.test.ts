/**
 * Admission and deadlines against a real glimpse over HTTP (simulated engine): what a client sees
 * when the server is full, when it waits, when the engine goes quiet, when the client leaves.
 */
import { test } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { startGlimpse, RED_PIXEL_PNG } from '../helpers/glimpse.js';
import { sseComments, sseData, waitFor } from '../helpers/wait.js';

const chat = (stream: boolean, extra: Record<string, unknown> = {}) => ({
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'What is this?' },
        { type: 'image_url', image_url: { url: RED_PIXEL_PNG } },
      ],
    },
  ],
  stream,
  ...extra,
});
const post = (url: string, body: unknown, signal?: AbortSignal) =>
  fetch(url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });

test('a full queue is refused at once with 429 queue_full and Retry-After; admitted requests still succeed', async (t) => {
  // The first answer takes long enough that the slot is surely still taken while the 8 MB upload
  // and the GLM request are refused, even on a loaded machine.
  const g = await startGlimpse({
    engine: 'simulated',
    maxInFlight: 1,
    maxQueue: 1,
    simulated: { ttftMs: 4000, tokensPerSecond: 1000, answerTokens: 3 },
  });
  t.after(() => g.close());
  const first = post(g.url, chat(false));
  await waitFor(() => g.pipeline.stats().inFlight === 1, 'first admitted');
  const second = post(g.url, chat(false));
  await waitFor(() => g.pipeline.stats().queued === 1, 'second queued');
  const third = await post(g.url, chat(false));
  assert.equal(third.status, 429);
  assert.match(third.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  const body = (await third.json()) as { error: { code: string; type: string } };
  assert.equal(body.error.code, 'queue_full');
  assert.equal(body.error.type, 'rate_limit_error');
  // A big upload is refused the same way, without the server reading the 8 MB first.
  const big = await fetch(g.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(chat(false, { padding: 'x'.repeat(8 * 1024 * 1024) })),
  });
  assert.equal(big.status, 429);
  assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'queue_full');
  const gbody = await fetch(g.url + '/api/v1/infer', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image: RED_PIXEL_PNG, prompt: 'x' }),
  });
  assert.equal(gbody.status, 429);
  await gbody.text();
  assert.equal(g.pipeline.stats().rejectedFull, 3);
  const [r1, r2] = await Promise.all([first, second]);
  assert.equal(r1.status, 200);
  assert.equal(r2.status, 200);
  assert.equal(r2.headers.get('x-queue-position'), '1');
  assert.match(r2.headers.get('x-queue-wait-ms') ?? '', /^\d+$/);
  await r1.json();
  await r2.json();
  assert.equal(g.pipeline.stats().inFlight, 0);
  assert.equal(g.pipeline.stats().queued, 0);
});

test('a request that waits longer than --queue-timeout gets 503 queue_timeout', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    maxInFlight: 1,
    maxQueue: 4,
    queueTimeout: 0.1,
    simulated: { ttftMs: 600, tokensPerSecond: 1000, answerTokens: 2 },
  });
  t.after(() => g.close());
  const first = post(g.url, chat(false));
  await waitFor(() => g.pipeline.stats().inFlight === 1, 'first admitted');
  const second = await post(g.url, chat(false));
  assert.equal(second.status, 503);
  assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'queue_timeout');
  assert.equal((await first).status, 200);
  assert.equal(g.pipeline.stats().queued, 0);
});

test('a queued SSE request gets its headers and a queue position comment before it is admitted', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    maxInFlight: 1,
    maxQueue: 4,
    simulated: { ttftMs: 200, tokensPerSecond: 1000, answerTokens: 3 },
  });
  t.after(() => g.close());
  const first = post(g.url, chat(false));
  await waitFor(() => g.pipeline.stats().inFlight === 1, 'first admitted');
  const res = await post(g.url, chat(true));
  // Headers arrived while the first request still holds the only slot.
  assert.equal(g.pipeline.stats().queued, 1);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-queue-position'), '1');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  const text = await res.text();
  assert.ok(text.startsWith(': queued position=1\n\n'), text.slice(0, 80));
  assert.ok(sseComments(text).some((c) => c.startsWith('admitted waited_ms=')));
  const data = sseData(text);
  assert.equal(data.at(-1), '[DONE]');
  assert.ok(data.some((d) => d.includes('"finish_reason":"stop"')));
  await (await first).json();
});

test('a quiet SSE stream carries heartbeat comments at the configured interval', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    heartbeatInterval: 0.05,
    simulated: { ttftMs: 400, tokensPerSecond: 1000, answerTokens: 2 },
  });
  t.after(() => g.close());
  const text = await (await post(g.url, chat(true))).text();
  assert.ok(sseComments(text).filter((c) => c === 'ping').length >= 2, text);
  assert.equal(sseData(text).at(-1), '[DONE]');
});

test('an engine that goes quiet between tokens longer than --idle-timeout ends the stream with idle_timeout, then [DONE]', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    idleTimeout: 0.1,
    simulated: { ttftMs: 0, tokensPerSecond: 2, answerTokens: 5 },
  });
  t.after(() => g.close());
  const res = await post(g.url, chat(true));
  assert.equal(res.status, 200);
  const data = sseData(await res.text());
  assert.equal(data.at(-1), '[DONE]');
  const err = JSON.parse(data.at(-2)!) as { error: { code: string } };
  assert.equal(err.error.code, 'idle_timeout');
  assert.ok(
    data.some((d) => d.includes('"content":"') && !d.includes('"content":""')),
    'the token before the silence was delivered',
  );
  assert.equal(g.pipeline.stats().inFlight, 0);
});

test('a request longer than --request-timeout gets 504 request_timeout and frees its slot', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    requestTimeout: 0.15,
    simulated: { ttftMs: 0, tokensPerSecond: 20, answerTokens: 50 },
  });
  t.after(() => g.close());
  const res = await post(g.url, chat(false));
  assert.equal(res.status, 504);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'request_timeout');
  assert.equal(g.pipeline.stats().inFlight, 0);
});

test('a client that disconnects mid-stream frees its slot and the gauges return to zero', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    maxInFlight: 1,
    maxQueue: 2,
    simulated: { ttftMs: 0, tokensPerSecond: 20, answerTokens: 200 },
  });
  t.after(() => g.close());
  const ac = new AbortController();
  const res = await post(g.url, chat(true), ac.signal);
  const reader = res.body!.getReader();
  await reader.read();
  assert.equal(g.pipeline.stats().inFlight, 1);
  // A queued request behind it, whose client also leaves.
  const ac2 = new AbortController();
  const queued = post(g.url, chat(true), ac2.signal).catch(() => null);
  await waitFor(() => g.pipeline.stats().queued === 1, 'second queued');
  ac2.abort();
  ac.abort();
  await queued;
  await waitFor(
    () => g.pipeline.stats().inFlight === 0 && g.pipeline.stats().queued === 0,
    'gauges back to zero',
    1000,
  );
  // The slot is really free: the next request is admitted and answered.
  const next = await post(g.url, chat(false, { max_tokens: 2 }));
  assert.equal(next.status, 200);
});

test('with --degraded-answer set, a request to an engine that is down gets that answer instead of an error', async (t) => {
  // An embedded engine that is down for sure, with or without internet: an uncached model while offline.
  const g = await startGlimpse({
    engine: 'embedded',
    modelPath: 'glimpse-test/never-cached',
    offline: true,
    cacheDir: join(tmpdir(), 'glimpse-empty-cache'),
    degradedAnswer: 'The service is busy; please try again in a minute.',
  });
  t.after(() => g.close());
  const res = await post(g.url, chat(false));
  assert.equal(res.status, 200);
  const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
  assert.equal(body.choices[0]!.message.content, 'The service is busy; please try again in a minute.');
  assert.equal(g.pipeline.stats().degraded, 1);
});

test('an SSE request that was queued and then timed out reads queue_timeout as its final event, then [DONE]', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    maxInFlight: 1,
    maxQueue: 4,
    queueTimeout: 0.1,
    simulated: { ttftMs: 500, tokensPerSecond: 1000, answerTokens: 2 },
  });
  t.after(() => g.close());
  const first = post(g.url, chat(false));
  await waitFor(() => g.pipeline.stats().inFlight === 1, 'first admitted');
  const res = await post(g.url, chat(true));
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.ok(sseComments(text).includes('queued position=1'));
  const data = sseData(text);
  assert.deepEqual(data.slice(-1), ['[DONE]']);
  assert.equal((JSON.parse(data.at(-2)!) as { error: { code: string } }).error.code, 'queue_timeout');
  assert.equal(data.length, 2, 'no content chunk before the error');
  await (await first).json();
});

test('/api/v1/infer: an error after the stream opened is one JSON data event, then [END]', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    idleTimeout: 0.1,
    simulated: { ttftMs: 0, tokensPerSecond: 2, answerTokens: 5 },
  });
  t.after(() => g.close());
  const res = await fetch(g.url + '/api/v1/infer', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image: RED_PIXEL_PNG, prompt: 'What?' }),
  });
  assert.equal(res.status, 200);
  const data = sseData(await res.text());
  assert.equal(data.at(-1), '[END]');
  assert.equal((JSON.parse(data.at(-2)!) as { error: { code: string } }).error.code, 'idle_timeout');
});

test('a non-streaming client that disconnects while its answer is generated frees the slot', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    simulated: { ttftMs: 0, tokensPerSecond: 20, answerTokens: 200 },
  });
  t.after(() => g.close());
  const ac = new AbortController();
  const pending = post(g.url, chat(false), ac.signal).catch((e: unknown) => e);
  await waitFor(() => g.pipeline.stats().inFlight === 1, 'admitted');
  ac.abort();
  await pending;
  await waitFor(() => g.pipeline.stats().inFlight === 0, 'slot freed after the client left', 1000);
});
