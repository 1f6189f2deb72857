/**
 * W3C Trace Context: a caller's traceparent/tracestate reach the upstream server (the vLLM double
 * records them) on every route kind, malformed ones are dropped, and every log line of the request
 * carries the trace id.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import OpenAI from 'openai';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config/index.js';
import { createServer, type Server } from '../../src/server/index.js';
import { traceIdOf } from '../../src/observability/index.js';
import { RED_PIXEL_PNG } from '../helpers/glimpse.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = `00-${TRACE}-b7ad6b7169203331-01`;

test('traceparent validation follows the spec: version ff and all-zero ids are invalid', () => {
  assert.equal(traceIdOf(PARENT), TRACE);
  for (const bad of [
    undefined,
    '',
    'nonsense',
    `ff-${TRACE}-b7ad6b7169203331-01`,
    `00-${'0'.repeat(32)}-b7ad6b7169203331-01`,
    `00-${TRACE}-${'0'.repeat(16)}-01`,
    `00-${TRACE.toUpperCase()}-b7ad6b7169203331-01`,
  ]) {
    assert.equal(traceIdOf(bad), undefined, String(bad));
  }
});

describe('trace context through glimpse to the upstream', () => {
  let vllm: FakeVllm;
  let server: Server;
  let url: string;
  const lines: string[] = [];
  before(async () => {
    vllm = await startFakeVllm();
    const config = loadConfig({
      flags: {
        engine: 'upstream',
        upstream: [vllm.url],
        upstreamModel: vllm.model,
        upstreamHealthInterval: 0,
        port: 0,
      },
      env: {},
    });
    const sink = new Writable({
      write: (chunk, _enc, done) => (lines.push(...String(chunk).split('\n').filter(Boolean)), done()),
    });
    server = await createServer(config, { logger: pino({ level: 'info' }, sink) });
    await server.engineStarted;
    url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await server?.close();
    await vllm?.close();
  });
  const lastTrace = () => {
    const r = [...vllm.requests].reverse().find((x) => x.method === 'POST')!;
    return { traceparent: r.headers.traceparent, tracestate: r.headers.tracestate };
  };

  test('OpenAI route, streamed and whole: traceparent and tracestate are passed on; every log line of the request has the trace id', async () => {
    const client = new OpenAI({
      baseURL: url + '/v1',
      apiKey: 'unused',
      maxRetries: 0,
      defaultHeaders: { traceparent: PARENT, tracestate: 'vendor=abc' },
    });
    await client.chat.completions.create({ model: vllm.model, messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(lastTrace(), { traceparent: PARENT, tracestate: 'vendor=abc' });
    const stream = await client.chat.completions.create({
      model: vllm.model,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    for await (const _ of stream) void _;
    assert.deepEqual(lastTrace(), { traceparent: PARENT, tracestate: 'vendor=abc' });
    const requestLines = lines.map((l) => JSON.parse(l)).filter((l) => l.reqId);
    assert.ok(requestLines.length >= 4);
    assert.ok(
      requestLines.every((l) => l.traceId === TRACE),
      'incoming and completed lines alike',
    );
  });

  test('a GLM-WEB route and the WebSocket pass it on too; a malformed one is not passed on', async () => {
    await fetch(url + '/v1/multimodal/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: PARENT },
      body: JSON.stringify({ image: RED_PIXEL_PNG, prompt: 'What is this?' }),
    });
    assert.equal(lastTrace().traceparent, PARENT);
    const ws = new WebSocket(url.replace('http', 'ws') + '/ws/infer', {
      headers: { traceparent: PARENT.replace('b7ad', 'c8be') },
    });
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () =>
        ws.send(
          JSON.stringify({
            type: 'request',
            id: 'r1',
            prompt: 'What is this?',
            image: RED_PIXEL_PNG,
            max_new_tokens: 4,
          }),
        ),
      );
      ws.on('message', (m) => JSON.parse(String(m)).type === 'done' && resolve());
      ws.on('error', reject);
    });
    ws.close();
    assert.equal(lastTrace().traceparent, PARENT.replace('b7ad', 'c8be'));
    await fetch(url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: 'garbage', tracestate: 'x=1' },
      body: JSON.stringify({ model: vllm.model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.deepEqual(lastTrace(), { traceparent: undefined, tracestate: undefined });
  });
});
