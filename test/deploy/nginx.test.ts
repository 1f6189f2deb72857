import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import OpenAI from 'openai';
import { WebSocket } from 'ws';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/index.js';
import { RED_PIXEL_PNG, startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { NGINX, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { waitFor } from '../helpers/wait.js';
import { sample } from '../helpers/metrics.js';

describe('deploy/nginx/glimpse.conf in a real nginx in front of glimpse', { skip: NGINX ? false : 'nginx not installed (Debian package nginx)' }, () => {
  let g: RunningGlimpse;
  let nginx: RunningNginx;
  before(async () => {
    // 25 tokens at 25 tokens/s: an answer that takes about a second to stream.
    g = await startGlimpse({ engine: 'simulated', simulated: { ttftMs: 50, tokensPerSecond: 25, answerTokens: 25 }, cache: { enabled: false } });
    nginx = await startNginx(Number(new URL(g.url).port));
  });
  after(async () => {
    await nginx?.stop();
    await g?.close();
  });

  test('an SSE answer reaches an OpenAI SDK client token by token, not buffered to the end', async () => {
    const client = new OpenAI({ baseURL: nginx.url + '/v1', apiKey: 'unused', maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'glimpse-simulated',
      stream: true,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: RED_PIXEL_PNG } }, { type: 'text', text: 'What is this?' }] }],
    });
    const arrivals: number[] = [];
    let text = '';
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta?.content;
      if (piece) {
        arrivals.push(performance.now());
        text += piece;
      }
    }
    assert.ok(text.length > 0);
    assert.ok(arrivals.length >= 10, `content arrived in ${arrivals.length} pieces`);
    // Buffered by a proxy, every piece would land at once at the end; streamed, they span the answer's ~1 s.
    const spread = arrivals.at(-1)! - arrivals[0]!;
    assert.ok(spread > 400, `pieces arrived within ${spread.toFixed(0)} ms of each other`);
  });

  test('the request id: the client\'s passes through, and without one nginx makes one that glimpse answers with', async () => {
    const mine = await fetch(nginx.url + '/v1/models', { headers: { 'x-request-id': 'client-chosen-42' } });
    assert.equal(mine.headers.get('x-request-id'), 'client-chosen-42');
    const made = await fetch(nginx.url + '/v1/models');
    assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/, 'nginx $request_id, echoed by glimpse');
  });

  test('a WebSocket /ws/infer session works through the proxy', async () => {
    const ws = new WebSocket(nginx.url.replace('http', 'ws') + '/ws/infer');
    const messages: Array<{ type: string; text?: string; finish_reason?: string }> = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => ws.send(JSON.stringify({ type: 'request', id: 'r1', prompt: 'What is this?', image: RED_PIXEL_PNG, max_new_tokens: 8 })));
      ws.on('message', (data) => {
        const m = JSON.parse(String(data));
        messages.push(m);
        if (m.type === 'done' || m.type === 'error') resolve();
      });
      ws.on('error', reject);
    });
    ws.close();
    assert.deepEqual([messages[0]!.type, messages.at(-1)!.type], ['start', 'done']);
    assert.equal(messages.filter((m) => m.type === 'token').length, 8);
  });

  test('a body over the limit is refused by nginx with 413 in the OpenAI error shape', async () => {
    const big = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(21 * 1024 * 1024) }] });
    const res = await fetch(nginx.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    assert.equal(res.status, 413);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = await res.json();
    assert.equal(body.error.code, 'payload_too_large');
  });

  test('glimpse\'s own errors pass through unchanged (a 400 with its code)', async () => {
    const res = await fetch(nginx.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [], max_tokens: 4 }) });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.code, 'empty_messages');
  });

  /** glimpse's own counters, read directly (not through nginx). */
  async function counters(): Promise<{ cancelled: number; inFlight: number }> {
    const text = await (await fetch(g.url + '/metrics')).text();
    return { cancelled: sample(text, 'glimpse_generations_total', { model: 'glimpse-simulated', outcome: 'cancelled' }) ?? 0, inFlight: sample(text, 'glimpse_generations_in_flight') ?? -1 };
  }
  async function until(cond: (c: { cancelled: number; inFlight: number }) => boolean, what: string, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond(await counters())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await counters())}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  for (const stream of [true, false]) {
    test(`a client that leaves mid-answer (${stream ? 'streaming' : 'waiting for one JSON body'}) cancels the generation in glimpse`, async () => {
      const before = (await counters()).cancelled;
      // Raw HTTP so the connection really closes (no pooling). 2000 tokens at 25/s would run 80 s.
      const req = request(nginx.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' } });
      req.on('error', () => {});
      req.end(JSON.stringify({ stream, max_tokens: 2000, messages: [{ role: 'user', content: 'Tell me a long story.' }] }));
      await until((c) => c.inFlight === 1, 'the generation to start');
      req.destroy();
      await until((c) => c.cancelled === before + 1 && c.inFlight === 0, 'glimpse to cancel it and free the slot');
    });
  }

  test('/metrics is served to loopback through the proxy', async () => {
    const res = await fetch(nginx.url + '/metrics');
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^glimpse_generations_in_flight /m);
  });

  test('with glimpse down, nginx answers 502 upstream_unavailable as JSON with Retry-After', async () => {
    await g.close();
    const res = await fetch(nginx.url + '/v1/models', { headers: { 'x-request-id': 'while-down' } });
    assert.equal(res.status, 502);
    assert.equal(res.headers.get('retry-after'), '5');
    assert.equal(res.headers.get('x-request-id'), 'while-down');
    assert.equal((await res.json()).error.code, 'upstream_unavailable');
    await waitFor(() => /connect\(\) failed/.test(nginx.errorLog()), 'nginx to log the refused connection');
  });
});

test('the shipped nginx limits agree with glimpse\'s defaults (timeouts longer than the request deadline and heartbeats, the same body limit)', () => {
  const conf = readFileSync(new URL('../../deploy/nginx/glimpse.conf', import.meta.url), 'utf8');
  const defaults = loadConfig({ env: {} });
  const seconds = (directive: string) => {
    const m = new RegExp(`^\\s*${directive} (\\d+)s;`, 'm').exec(conf);
    assert.ok(m, `${directive} is set in seconds`);
    return Number(m[1]);
  };
  assert.ok(seconds('proxy_read_timeout') > defaults.requestTimeout, 'nginx outwaits --request-timeout, so glimpse\'s own timeout error reaches the client');
  assert.ok(seconds('proxy_read_timeout') > defaults.heartbeatInterval);
  assert.ok(seconds('proxy_send_timeout') > defaults.requestTimeout);
  const body = /^\s*client_max_body_size (\d+)m;/m.exec(conf);
  assert.ok(body, 'client_max_body_size is set in MiB');
  assert.equal(Number(body[1]) * 1024 * 1024, defaults.bodyLimit);
});
