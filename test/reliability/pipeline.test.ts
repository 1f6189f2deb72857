/** The pipeline's guarantees with engines that misbehave in ways a real engine can (hang, ignore abort, stop short). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { createPipeline, generationOf, type PipelineEvent } from '../../src/server/pipeline.js';
import type { Engine, GenerateEvent, GenerateRequest } from '../../src/core/index.js';

const logger = createLogger({ level: 'silent', format: 'json' });

function engineFrom(gen: (signal: AbortSignal) => AsyncIterable<GenerateEvent>): Engine {
  return {
    async start() {},
    generate: (_req, signal) => gen(signal),
    info: () => ({
      engine: 'simulated',
      model: 'm',
      models: [{ id: 'm', ownedBy: 'test' }],
      device: 'none',
      simulated: true,
    }),
    health: () => ({ status: 'healthy', modelLoaded: true, ready: true }),
    async close() {},
  };
}

const request = (): GenerateRequest => ({
  id: 'r',
  model: '',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
  sampling: { maxTokens: 8, temperature: 0, topP: 1, stop: [] },
});

/** The generation's events (the queue's own, queued and admitted, are left out). */
async function drain(events: AsyncIterable<PipelineEvent>): Promise<GenerateEvent[]> {
  const out: GenerateEvent[] = [];
  for await (const ev of generationOf(events)) out.push(ev);
  return out;
}

/** Yields one token, then waits forever without looking at its signal. */
const deafEngine = () =>
  engineFrom(async function* () {
    yield { type: 'token', text: 'a' };
    await new Promise(() => {});
  });

test('an engine that hangs and ignores its abort signal still ends the stream with idle_timeout and frees the slot', async () => {
  const config = loadConfig({ flags: { engine: 'simulated', idleTimeout: 0.05 }, env: {} });
  const p = createPipeline(config, deafEngine(), logger);
  const events = await drain(await p.open(request(), new AbortController().signal));
  assert.deepEqual(
    events.map((e) => e.type),
    ['token', 'error'],
  );
  assert.equal((events[1] as Extract<GenerateEvent, { type: 'error' }>).error.code, 'idle_timeout');
  assert.equal(p.stats().inFlight, 0);
});

test('a client that leaves while a deaf engine hangs gets its stream ended (cancelled) and the slot back at once', async () => {
  const config = loadConfig({ flags: { engine: 'simulated' }, env: {} });
  const p = createPipeline(config, deafEngine(), logger);
  const ac = new AbortController();
  const stream = await p.open(request(), ac.signal);
  const got: GenerateEvent[] = [];
  const done = (async () => {
    for await (const ev of generationOf(stream)) {
      got.push(ev);
      if (ev.type === 'token') ac.abort();
    }
  })();
  await done;
  assert.deepEqual(
    got.map((e) => e.type),
    ['token', 'done'],
  );
  assert.equal((got[1] as Extract<GenerateEvent, { type: 'done' }>).finishReason, 'cancelled');
  assert.equal(p.stats().inFlight, 0);
});

test('an engine that stops without done or error is turned into an engine_error event', async () => {
  const config = loadConfig({ flags: { engine: 'simulated' }, env: {} });
  const p = createPipeline(
    config,
    engineFrom(async function* () {
      yield { type: 'token', text: 'half an answ' };
    }),
    logger,
  );
  const events = await drain(await p.open(request(), new AbortController().signal));
  assert.equal(events.at(-1)!.type, 'error');
  assert.equal((events.at(-1) as Extract<GenerateEvent, { type: 'error' }>).error.code, 'engine_error');
});

test('an engine that throws becomes one error event without leaking its internals', async () => {
  const config = loadConfig({ flags: { engine: 'simulated' }, env: {} });
  const p = createPipeline(
    config,
    engineFrom(async function* () {
      throw new Error('secret path /opt/model/weights.bin');
    }),
    logger,
  );
  const events = await drain(await p.open(request(), new AbortController().signal));
  assert.equal(events.length, 1);
  const e = (events[0] as Extract<GenerateEvent, { type: 'error' }>).error;
  assert.equal(e.code, 'internal_error');
  assert.doesNotMatch(e.message, /secret/);
  assert.equal(p.stats().inFlight, 0);
});

test('a stream that is opened but never read releases its slot when the client goes away', async () => {
  const config = loadConfig({ flags: { engine: 'simulated', maxInFlight: 1 }, env: {} });
  const p = createPipeline(config, deafEngine(), logger);
  const ac = new AbortController();
  await p.open(request(), ac.signal);
  assert.equal(p.stats().inFlight, 1);
  ac.abort();
  assert.equal(p.stats().inFlight, 0);
});

test('shutdown cancels what is still running after the grace period with a shutting_down event', async () => {
  const config = loadConfig({ flags: { engine: 'simulated' }, env: {} });
  const p = createPipeline(config, deafEngine(), logger);
  const stream = await p.open(request(), new AbortController().signal);
  const events = drain(stream);
  await new Promise((r) => setTimeout(r, 10));
  await p.shutdown(30);
  const got = await events;
  assert.equal((got.at(-1) as Extract<GenerateEvent, { type: 'error' }>).error.code, 'shutting_down');
  await assert.rejects(
    p.open(request(), new AbortController().signal),
    (e: { code?: string }) => e.code === 'shutting_down',
  );
});

test('the pipeline hands each engine the image form it declares: pixels without an encode, or bytes without the pixels', async () => {
  const { default: sharp } = await import('sharp');
  const jpegBytes = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#3366cc' } })
    .jpeg()
    .toBuffer();
  for (const imageInput of ['pixels', 'encoded', undefined] as const) {
    let seen: GenerateRequest | undefined;
    const engine: Engine = {
      ...engineFrom(async function* () {
        yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 0 } };
      }),
      generate: (req) => {
        seen = req;
        return (async function* (): AsyncIterable<GenerateEvent> {
          yield { type: 'token', text: 'ok' };
          yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } };
        })();
      },
      ...(imageInput ? { imageInput } : {}),
    };
    const config = loadConfig({ flags: { engine: 'simulated', cache: { enabled: false } }, env: {} });
    const p = createPipeline(config, engine, logger);
    const req = request();
    req.messages[0]!.content.unshift({ type: 'image', source: { kind: 'bytes', data: jpegBytes } });
    await drain(await p.open(req, new AbortController().signal));
    const part = seen!.messages[0]!.content[0]!;
    assert.equal(part.type, 'image');
    const resolved = part.type === 'image' ? part.resolved! : undefined;
    if (imageInput === 'pixels') {
      assert.equal(resolved?.data, undefined, 'no encode for an engine that takes pixels');
      assert.equal(resolved?.rgb?.data.length, 40 * 30 * 3);
    } else {
      assert.equal(resolved?.rgb, undefined, `${imageInput ?? 'default'}: pixels dropped once encoded`);
      assert.ok(resolved?.data && resolved.data.length > 0);
    }
  }
});

test('the engine starts when the slot is won, before the route reads; an unread stream whose client leaves stops it and frees the slot', async () => {
  const config = loadConfig({ flags: { engine: 'simulated' }, env: {} });
  let calls = 0;
  let aborted = false;
  const engine = engineFrom(async function* (signal) {
    calls++;
    signal.addEventListener('abort', () => (aborted = true));
    yield { type: 'token', text: 'a' };
    await new Promise(() => {});
  });
  const p = createPipeline(config, engine, logger);
  const ac = new AbortController();
  await p.open(request(), ac.signal);
  assert.equal(calls, 1, 'generation began while the route had not read anything yet');
  assert.equal(p.stats().inFlight, 1);
  ac.abort();
  assert.equal(aborted, true, 'the engine was told to stop');
  assert.equal(p.stats().inFlight, 0, 'the slot is free');
});

test('an engine whose first step throws before anything is read still ends the stream with one error', async () => {
  const config = loadConfig({ flags: { engine: 'simulated' }, env: {} });
  const engine = engineFrom(async function* () {
    throw new Error('boom');
  });
  const p = createPipeline(config, engine, logger);
  const stream = await p.open(request(), new AbortController().signal);
  await new Promise((r) => setTimeout(r, 5)); // the rejection happens before the route reads
  const events = await drain(stream);
  assert.deepEqual(
    events.map((e) => e.type),
    ['error'],
  );
  assert.equal(p.stats().inFlight, 0);
});

test('the idle deadline runs between events, not before the first: a long silent prefill is bounded by the total deadline only', async () => {
  const slowFirst = engineFrom(async function* (signal) {
    await new Promise((r) => setTimeout(r, 150));
    if (signal.aborted) return;
    yield { type: 'token', text: 'a' };
    yield { type: 'done', finishReason: 'stop' };
  });
  const patient = createPipeline(
    loadConfig({ flags: { engine: 'simulated', idleTimeout: 0.05 }, env: {} }),
    slowFirst,
    logger,
  );
  assert.deepEqual(
    (await drain(await patient.open(request(), new AbortController().signal))).map((e) => e.type),
    ['token', 'done'],
  );

  const silent = engineFrom(async function* () {
    await new Promise(() => {});
  });
  const bounded = createPipeline(
    loadConfig({ flags: { engine: 'simulated', idleTimeout: 0.05, requestTimeout: 0.2 }, env: {} }),
    silent,
    logger,
  );
  const events = await drain(await bounded.open(request(), new AbortController().signal));
  assert.deepEqual(
    events.map((e) => (e.type === 'error' ? e.error.code : e.type)),
    ['request_timeout'],
  );
  assert.equal(bounded.stats().inFlight, 0);
});
