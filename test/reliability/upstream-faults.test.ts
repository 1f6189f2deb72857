/**
 * Fault tests: a real glimpse over HTTP in front of in-test upstreams speaking vLLM's wire
 * format, each misbehaving in one way users meet. Each test pins exactly what the client sees and
 * that nothing leaks (slots, queue, upstream connections).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, RED_PIXEL_PNG, type RunningGlimpse } from '../helpers/glimpse.js';
import { sseData, waitFor } from '../helpers/wait.js';

const chat = (stream: boolean) => ({
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
});
const post = (
  g: RunningGlimpse,
  body: unknown,
  opts: { signal?: AbortSignal; headers?: Record<string, string> } = {},
) =>
  fetch(g.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...opts.headers },
    body: JSON.stringify(body),
    signal: opts.signal,
  });

const posts = (f: FakeVllm) => f.requests.filter((r) => r.method === 'POST').length;

async function setup(
  t: import('node:test').TestContext,
  scripts: Array<FakeVllm['script']>,
  flags: Record<string, unknown> = {},
) {
  const fakes = await Promise.all(scripts.map((script) => startFakeVllm({ script })));
  const g = await startGlimpse({
    engine: 'upstream',
    upstream: fakes.map((f) => f.url),
    upstreamModel: fakes[0]!.model,
    upstreamHealthInterval: 0,
    upstreamRetryBackoffMs: 1,
    ...flags,
  });
  t.after(async () => {
    await g.close();
    await Promise.all(fakes.map((f) => f.close()));
  });
  return { g, fakes };
}

async function assertNothingLeaks(g: RunningGlimpse, fakes: FakeVllm[]): Promise<void> {
  await waitFor(
    () => g.pipeline.stats().inFlight === 0 && g.pipeline.stats().queued === 0,
    'scheduler gauges at zero',
    2000,
  );
  await waitFor(() => fakes.every((f) => f.openConnections() === 0), 'upstream connections closed', 2000);
}

const contentOf = (data: string[]) =>
  data
    .filter((d) => d.startsWith('{'))
    .map((d) => JSON.parse(d) as { choices?: Array<{ delta?: { content?: string } }> })
    .map((c) => c.choices?.[0]?.delta?.content ?? '')
    .join('');

test('upstream killed mid-stream: the client gets the tokens so far, then an upstream_error event, then [DONE]; no retry after tokens', async (t) => {
  const { g, fakes } = await setup(t, [() => ({ dieAfter: 2 })]);
  const res = await post(g, chat(true));
  assert.equal(res.status, 200);
  const data = sseData(await res.text());
  assert.equal(data.at(-1), '[DONE]');
  const last = JSON.parse(data.at(-2)!) as { error: { code: string } };
  assert.equal(last.error.code, 'upstream_error');
  assert.equal(contentOf(data), 'A red square');
  assert.equal(posts(fakes[0]!), 1, 'a stream that already reached the client is never retried');
  await assertNothingLeaks(g, fakes);
});

test('upstream killed mid-stream, non-streaming client: 502 upstream_error', async (t) => {
  const { g, fakes } = await setup(t, [() => ({ dieAfter: 1 })]);
  const res = await post(g, chat(false));
  assert.equal(res.status, 502);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_error');
  await assertNothingLeaks(g, fakes);
});

test('upstream that accepts and never answers: retried, then 502 upstream_unavailable; the hung connections are closed', async (t) => {
  const { g, fakes } = await setup(t, [() => ({ hang: true })], { upstreamHeadersTimeout: 0.2, upstreamRetries: 1 });
  const res = await post(g, chat(false));
  assert.equal(res.status, 502);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'upstream_unavailable');
  assert.equal(posts(fakes[0]!), 2);
  await assertNothingLeaks(g, fakes);
});

test('one upstream that hangs and one that works: the client gets its answer from the working one', async (t) => {
  const { g, fakes } = await setup(t, [() => ({ hang: true }), () => ({})], { upstreamHeadersTimeout: 0.2 });
  for (let i = 0; i < 2; i++) {
    const res = await post(g, chat(false));
    assert.equal(res.status, 200);
    assert.equal(
      ((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content,
      'A red square on white.',
    );
  }
  await assertNothingLeaks(g, fakes);
});

test('upstream 500 then 200: retried before the first byte, the client sees one clean answer with its request id forwarded', async (t) => {
  const { g, fakes } = await setup(t, [(_r, i) => (i === 0 ? { status: 500 } : {})]);
  const res = await post(g, chat(true), { headers: { 'x-request-id': 'req-500-then-200' } });
  assert.equal(res.status, 200);
  const data = sseData(await res.text());
  assert.equal(contentOf(data), 'A red square on white.');
  assert.ok(!data.some((d) => d.includes('"error"')));
  assert.equal(data.at(-1), '[DONE]');
  const upstreamPosts = fakes[0]!.requests.filter((r) => r.method === 'POST');
  assert.equal(upstreamPosts.length, 2);
  assert.deepEqual(
    upstreamPosts.map((r) => r.headers['x-request-id']),
    ['req-500-then-200', 'req-500-then-200'],
  );
  await assertNothingLeaks(g, fakes);
});

test('upstream 200 with an empty stream: retried, and the retry answers', async (t) => {
  const { g, fakes } = await setup(t, [(_r, i) => (i === 0 ? { empty: true } : {})]);
  const res = await post(g, chat(false));
  assert.equal(res.status, 200);
  assert.equal(
    ((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content,
    'A red square on white.',
  );
  assert.equal(posts(fakes[0]!), 2);
});

test('upstream that only ever sends empty streams: 502 empty_completion, never a 200 with an empty body', async (t) => {
  const { g, fakes } = await setup(t, [() => ({ empty: true })], { upstreamRetries: 2, upstreamBreakerThreshold: 100 });
  const res = await post(g, chat(false));
  assert.equal(res.status, 502);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'empty_completion');
  assert.equal(posts(fakes[0]!), 3);
  // Streaming: the error is the stream's one event before [DONE]; no content chunk is sent.
  const s = await post(g, chat(true));
  const data = sseData(await s.text());
  assert.equal(data.at(-1), '[DONE]');
  assert.equal((JSON.parse(data.at(-2)!) as { error: { code: string } }).error.code, 'empty_completion');
  assert.equal(contentOf(data), '');
  await assertNothingLeaks(g, fakes);
});

test('slow upstream and a client that leaves: the upstream request is aborted and the slot freed', async (t) => {
  const { g, fakes } = await setup(t, [
    () => ({ delayMs: 100, content: Array.from({ length: 50 }, (_, i) => ` w${i}`) }),
  ]);
  const ac = new AbortController();
  const res = await post(g, chat(true), { signal: ac.signal });
  const reader = res.body!.getReader();
  await reader.read();
  await waitFor(() => fakes[0]!.openConnections() === 1, 'upstream request open');
  ac.abort();
  await assertNothingLeaks(g, fakes);
  assert.ok(fakes[0]!.contentChunksSent() < 50, 'the upstream stopped before the end');
});

test('a client reading slowly holds back the upstream instead of glimpse buffering the stream, and still gets every byte', async (t) => {
  const piece = 'x'.repeat(64 * 1024);
  const chunks = 300; // ~19 MiB of content: far more than socket buffers hold
  const { g, fakes } = await setup(t, [
    () => ({ reasoning: [], content: Array.from({ length: chunks }, () => piece) }),
  ]);
  const u = new URL(g.url);
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const r = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: '/v1/chat/completions',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      },
      resolve,
    );
    r.on('error', reject);
    r.end(JSON.stringify(chat(true)));
  });
  res.pause();
  // Let the pipes fill, then check that the upstream is held back.
  let last = -1;
  await waitFor(
    () => {
      const now = fakes[0]!.contentChunksSent();
      const stable = now === last && now > 0;
      last = now;
      return stable;
    },
    'the upstream to stall behind the paused client',
    5000,
  );
  const stalledAt = fakes[0]!.contentChunksSent();
  assert.ok(stalledAt < chunks / 2, `upstream wrote ${stalledAt} of ${chunks} chunks while the client read nothing`);
  const memBefore = process.memoryUsage().rss;
  res.resume();
  let text = '';
  res.setEncoding('utf8');
  for await (const c of res) text += c;
  const data = sseData(text);
  assert.equal(data.at(-1), '[DONE]');
  assert.equal(contentOf(data).length, piece.length * chunks);
  assert.ok(process.memoryUsage().rss - memBefore < 512 * 1024 * 1024);
  await assertNothingLeaks(g, fakes);
});

test('an upstream that keeps failing is ejected by the breaker, then probed once after the cooldown', async (t) => {
  // Every request carries the same image: image affinity off, so each first attempt is routed by load alone.
  const { g, fakes } = await setup(t, [() => ({ status: 500 }), () => ({})], {
    upstreamBreakerThreshold: 2,
    upstreamBreakerCooldown: 1.5,
    upstreamRetries: 1,
    upstreamAffinity: false,
  });
  for (let i = 0; i < 8; i++) {
    const res = await post(g, chat(false));
    assert.equal(res.status, 200, `request ${i}`);
    await res.json();
  }
  assert.equal(posts(fakes[0]!), 2, 'after two failures the bad upstream gets no more traffic');
  assert.equal(posts(fakes[1]!), 8);
  await new Promise((r) => setTimeout(r, 1600));
  for (let i = 0; i < 2; i++) await (await post(g, chat(false))).json();
  assert.equal(posts(fakes[0]!), 3, 'one half-open probe after the cooldown, which failed and re-opened the breaker');
});

test('least outstanding requests: concurrent requests spread evenly over two upstreams', async (t) => {
  // The same image in every request: with affinity on it would stay on one replica up to its bounded load (pool tests).
  const { g, fakes } = await setup(t, [() => ({ delayMs: 40 }), () => ({ delayMs: 40 })], { upstreamAffinity: false });
  const all = await Promise.all(Array.from({ length: 6 }, () => post(g, chat(false)).then((r) => r.json())));
  assert.equal(all.length, 6);
  assert.equal(posts(fakes[0]!), 3);
  assert.equal(posts(fakes[1]!), 3);
});

test('fallback chain: when every primary upstream fails, the fallback pool answers with its model', async (t) => {
  const primary = await startFakeVllm({ script: () => ({ status: 503 }) });
  const backup = await startFakeVllm({ model: 'backup-vlm', script: () => ({ content: ['From', ' the backup'] }) });
  const g = await startGlimpse({
    engine: 'upstream',
    upstream: [primary.url],
    upstreamModel: primary.model,
    fallbackUpstream: [backup.url],
    fallbackUpstreamModel: 'backup-vlm',
    upstreamHealthInterval: 0,
    upstreamRetryBackoffMs: 1,
    upstreamRetries: 1,
  });
  t.after(async () => {
    await g.close();
    await primary.close();
    await backup.close();
  });
  const res = await post(g, chat(false));
  assert.equal(res.status, 200);
  assert.equal(
    ((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content,
    'From the backup',
  );
  assert.equal(posts(primary), 2);
  assert.equal(backup.requests.filter((r) => r.method === 'POST')[0]!.body.model, 'backup-vlm');
});

test('everything down with --degraded-answer: the client gets the degraded answer, streamed like any other', async (t) => {
  const { g } = await setup(t, [() => ({ status: 500 })], {
    degradedAnswer: '服务繁忙，请稍后再试。',
    upstreamRetries: 1,
  });
  const res = await post(g, chat(true));
  assert.equal(res.status, 200);
  const data = sseData(await res.text());
  assert.equal(contentOf(data), '服务繁忙，请稍后再试。');
  assert.equal(data.at(-1), '[DONE]');
  assert.equal(g.pipeline.stats().degraded, 1);
});

test('a degraded answer is never cached: once the upstream recovers, the same deterministic request gets a real answer', async (t) => {
  let down = true;
  const { g } = await setup(t, [() => (down ? { status: 500 } : {})], {
    degradedAnswer: 'Busy, try again.',
    upstreamRetries: 0,
  });
  const body = { ...chat(false), temperature: 0 };
  const first = await post(g, body);
  assert.equal(first.headers.get('x-glimpse-cache'), 'miss', 'a deterministic request is cacheable');
  assert.equal(
    ((await first.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content,
    'Busy, try again.',
  );
  down = false;
  const second = await post(g, body);
  assert.equal(second.headers.get('x-glimpse-cache'), 'miss');
  assert.equal(
    ((await second.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content,
    'A red square on white.',
  );
  const third = await post(g, body);
  assert.equal(third.headers.get('x-glimpse-cache'), 'hit', 'the real answer is cached');
  await third.json();
});

test('with every upstream ejected, requests are still tried (panic routing) rather than refused for the whole cooldown', async (t) => {
  // One request that fails three times opens the only upstream's breaker; the next request must not pay for it.
  const { g, fakes } = await setup(t, [(_r, i) => (i < 3 ? { status: 500 } : {})], {
    upstreamBreakerThreshold: 2,
    upstreamBreakerCooldown: 60,
    upstreamRetries: 2,
  });
  const bad = await post(g, chat(false));
  assert.equal(bad.status, 502);
  await bad.json();
  assert.equal(
    (await fetch(g.url + '/ready')).status,
    200,
    'a breaker opened by failed requests does not take the server out of rotation',
  );
  const good = await post(g, chat(false));
  assert.equal(good.status, 200);
  assert.equal(
    ((await good.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content,
    'A red square on white.',
  );
  assert.equal(posts(fakes[0]!), 4);
});
