/** WS /ws/infer against a real glimpse: protocol, several ids on one connection, cancel, pings, backpressure. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { startGlimpse, RED_PIXEL_PNG, type RunningGlimpse } from '../helpers/glimpse.js';
import { startFakeVllm } from '../helpers/fake-vllm.js';
import { waitFor } from '../helpers/wait.js';

type Msg = {
  type: string;
  id?: string | null;
  text?: string;
  finish_reason?: string;
  position?: number;
  error?: { code: string; message: string; status: number; retry_after?: number };
};

async function connect(g: RunningGlimpse, opts: { autoPong?: boolean } = {}) {
  const ws = new WebSocket(g.url.replace('http', 'ws') + '/ws/infer', opts);
  const messages: Msg[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Msg));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (pred: (m: Msg) => boolean, what: string, ms = 10_000): Promise<Msg> => {
    await waitFor(() => messages.some(pred), what, ms);
    return messages.find(pred)!;
  };
  return { ws, messages, next, send: (obj: unknown) => ws.send(JSON.stringify(obj)) };
}

const ask = (id: string, extra: Record<string, unknown> = {}) => ({
  type: 'request',
  id,
  prompt: 'What is this?',
  image: RED_PIXEL_PNG,
  ...extra,
});

test('answers {"type":"ping"} with {"type":"pong"}', async (t) => {
  const g = await startGlimpse({ engine: 'simulated' });
  t.after(() => g.close());
  const c = await connect(g);
  c.send({ type: 'ping' });
  await c.next((m) => m.type === 'pong', 'pong');
  c.ws.close();
});

test('two requests on one connection each get start, tokens and done under their own id', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    simulated: { ttftMs: 10, tokensPerSecond: 500, answerTokens: 6 },
  });
  t.after(() => g.close());
  const c = await connect(g);
  c.send(ask('a'));
  c.send(ask('b', { prompt: 'And this?' }));
  await c.next((m) => m.type === 'done' && m.id === 'a', 'a done');
  await c.next((m) => m.type === 'done' && m.id === 'b', 'b done');
  for (const id of ['a', 'b']) {
    const mine = c.messages.filter((m) => m.id === id);
    assert.equal(mine[0]!.type, 'start');
    assert.equal(mine.at(-1)!.type, 'done');
    assert.equal(mine.at(-1)!.finish_reason, 'stop');
    assert.equal(mine.filter((m) => m.type === 'token').length, 6);
  }
  c.ws.close();
});

test('cancel stops one request (done with finish_reason cancelled) and frees its slot; the other goes on', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    simulated: { ttftMs: 0, tokensPerSecond: 20, answerTokens: 200 },
  });
  t.after(() => g.close());
  const c = await connect(g);
  c.send(ask('slow'));
  c.send(ask('other', { max_new_tokens: 3 }));
  await c.next((m) => m.type === 'token' && m.id === 'slow', 'first token');
  c.send({ type: 'cancel', id: 'slow' });
  const done = await c.next((m) => m.type === 'done' && m.id === 'slow', 'cancel acknowledged');
  assert.equal(done.finish_reason, 'cancelled');
  await c.next((m) => m.type === 'done' && m.id === 'other', 'other done');
  await waitFor(() => g.pipeline.stats().inFlight === 0, 'slots free');
  c.send({ type: 'cancel', id: 'nope' });
  assert.equal((await c.next((m) => m.type === 'error' && m.id === 'nope', 'unknown id')).error!.code, 'not_found');
  c.ws.close();
});

test('closing the connection aborts its running requests and frees their slots', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    simulated: { ttftMs: 0, tokensPerSecond: 20, answerTokens: 200 },
  });
  t.after(() => g.close());
  const c = await connect(g);
  c.send(ask('x'));
  c.send(ask('y'));
  await c.next((m) => m.type === 'token', 'a token');
  assert.equal(g.pipeline.stats().inFlight, 2);
  c.ws.terminate();
  await waitFor(() => g.pipeline.stats().inFlight === 0, 'slots free after the client left', 1000);
});

test('bad messages get an error with a stable code and the connection stays usable', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    maxJsonDepth: 8,
    simulated: { ttftMs: 0, tokensPerSecond: 1000, answerTokens: 2 },
  });
  t.after(() => g.close());
  const c = await connect(g);
  c.ws.send('{not json');
  assert.equal((await c.next((m) => m.error?.code === 'invalid_json', 'invalid_json')).id, null);
  c.send({ type: 'launch' });
  await c.next((m) => m.error?.code === 'invalid_request', 'unknown type');
  c.send({ type: 'request', id: 'p' });
  assert.equal(
    (await c.next((m) => m.id === 'p' && m.type === 'error', 'missing prompt')).error!.code,
    'missing_prompt',
  );
  c.send(ask('m', { max_new_tokens: 0 }));
  assert.equal(
    (await c.next((m) => m.id === 'm' && m.type === 'error', 'bad max tokens')).error!.code,
    'invalid_max_tokens',
  );
  c.send(ask('i', { image: 'file:///etc/passwd' }));
  assert.equal((await c.next((m) => m.id === 'i' && m.type === 'error', 'bad image')).error!.code, 'invalid_image_url');
  // Nested past maxJsonDepth (here 8): refused from the text, before it is parsed.
  c.ws.send(JSON.stringify({ ...ask('deep'), extra: [[[[[[[[[1]]]]]]]]] }));
  const deep = await c.next(
    (m) => m.type === 'error' && /deeper than 8 levels/.test(m.error?.message ?? ''),
    'too deep',
  );
  assert.equal(deep.error!.code, 'invalid_request');
  c.send({ ...ask('shallow'), extra: [[[[[[1]]]]]] });
  await c.next((m) => m.id === 'shallow' && m.type === 'done', 'seven levels are fine');
  c.send(ask('ok'));
  await c.next((m) => m.id === 'ok' && m.type === 'done', 'a good request after the bad ones');
  c.ws.close();
});

test('a full queue answers a WebSocket request with queue_full and retry_after; a queued one is told its position', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    maxInFlight: 1,
    maxQueue: 1,
    simulated: { ttftMs: 0, tokensPerSecond: 50, answerTokens: 20 },
  });
  t.after(() => g.close());
  const c = await connect(g);
  c.send(ask('1'));
  await c.next((m) => m.id === '1' && m.type === 'start', 'first admitted');
  c.send(ask('2'));
  assert.equal((await c.next((m) => m.id === '2' && m.type === 'queued', 'second queued')).position, 1);
  c.send(ask('3'));
  const err = await c.next((m) => m.id === '3' && m.type === 'error', 'third refused');
  assert.equal(err.error!.code, 'queue_full');
  assert.equal(err.error!.status, 429);
  assert.ok((err.error!.retry_after ?? 0) >= 1);
  await c.next((m) => m.id === '2' && m.type === 'done', 'second done');
  c.ws.close();
});

test('a peer that stops answering pings is dropped and its requests stop', async (t) => {
  // Long enough that a loaded machine still sends 'start' before the first missed pong drops the peer.
  const g = await startGlimpse({
    engine: 'simulated',
    wsPingInterval: 0.5,
    simulated: { ttftMs: 0, tokensPerSecond: 10, answerTokens: 500 },
  });
  t.after(() => g.close());
  const c = await connect(g, { autoPong: false });
  c.send(ask('z'));
  await c.next((m) => m.type === 'start', 'started');
  await new Promise<void>((resolve) => c.ws.once('close', () => resolve()));
  await waitFor(() => g.pipeline.stats().inFlight === 0, 'slot freed', 3000);
});

test('a WebSocket client that stops reading holds back the engine instead of glimpse buffering without bound', async (t) => {
  const piece = 'y'.repeat(64 * 1024);
  // 64 MB in all: far more than the kernel can hold in the two loopback connections' socket buffers
  // (tcp_rmem/tcp_wmem autotune to several MB each), so only real backpressure keeps the upstream
  // under half of it.
  const chunks = 1000;
  const fake = await startFakeVllm({
    script: () => ({ reasoning: [], content: Array.from({ length: chunks }, () => piece) }),
  });
  const g = await startGlimpse({
    engine: 'upstream',
    upstream: [fake.url],
    upstreamModel: fake.model,
    upstreamHealthInterval: 0,
    wsMaxBufferedBytes: 256 * 1024,
  });
  t.after(async () => {
    await g.close();
    await fake.close();
  });
  const c = await connect(g);
  c.send(ask('big', { image: undefined }));
  await c.next((m) => m.type === 'token', 'first token');
  c.ws.pause();
  // Stalled: no new chunk for 300 ms.
  let last = -1;
  let since = Date.now();
  await waitFor(
    () => {
      const now = fake.contentChunksSent();
      if (now !== last) {
        last = now;
        since = Date.now();
      }
      return Date.now() - since >= 300;
    },
    'the upstream to stall',
    20_000,
  );
  assert.ok(
    fake.contentChunksSent() < chunks / 2,
    `upstream wrote ${fake.contentChunksSent()} of ${chunks} chunks while the client read nothing`,
  );
  c.ws.resume();
  await c.next((m) => m.type === 'done', 'done after resuming', 30_000);
  const text = c.messages
    .filter((m) => m.type === 'token')
    .map((m) => m.text)
    .join('');
  assert.equal(text.length, piece.length * chunks);
  c.ws.close();
});
