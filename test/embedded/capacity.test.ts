/**
 * The embedded engine's capacity, which the scheduler admits against: its live, warmed workers.
 * A crashed worker stops counting until it is back and warm; a worker still unwinding a request
 * that was stopped does not count until it is free; listeners hear each time capacity may grow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedEngine, type EmbeddedEngine } from '../../src/engines/embedded/index.js';
import { startGlimpse } from '../helpers/glimpse.js';
import { askAbout, collect, FIXTURE, fixtureConfig, nextCapacityChange, quietLogger, request } from './helpers.js';

/** A started one-worker engine for `body`, closed after it. */
async function withEngine(
  flags: Record<string, unknown>,
  body: (engine: EmbeddedEngine) => Promise<void>,
): Promise<void> {
  const engine = createEmbeddedEngine(fixtureConfig(flags), quietLogger);
  await engine.start();
  try {
    assert.equal(engine.capacity(), 1);
    await body(engine);
  } finally {
    await engine.close();
  }
}

/** Once `back` (a capacity-change call) has come, the worker counts again and answers a request. */
async function countsAndAnswersAgain(engine: EmbeddedEngine, back: Promise<void> | undefined): Promise<void> {
  await back;
  assert.equal(engine.capacity(), 1);
  const next = await collect(
    engine.generate(request(askAbout([20, 40, 220]), { maxTokens: 3 }), new AbortController().signal),
  );
  assert.equal(next.usage?.completionTokens, 3);
}

test('capacity is 0 until the workers are loaded and warmed, then one per worker; listeners hear each worker become ready; 0 after close', async () => {
  const engine = createEmbeddedEngine(fixtureConfig({ embeddedWorkers: 2 }), quietLogger);
  assert.equal(engine.capacity(), 0);
  const seen: number[] = [];
  const off = engine.onCapacityChange(() => seen.push(engine.capacity()));
  const starting = engine.start();
  assert.equal(engine.capacity(), 0);
  await starting;
  off();
  assert.equal(engine.health().ready, true);
  assert.equal(engine.capacity(), 2);
  assert.equal(engine.capacity('tiny-vlm'), 2);
  // Each worker is counted only once its own warm-up generation is through.
  assert.deepEqual(seen.sort(), [1, 2]);
  // A busy worker still counts: the caller counts what it has admitted.
  const ctrl = new AbortController();
  const it = engine.generate(request(askAbout([9, 9, 9]), { maxTokens: 3 }), ctrl.signal)[Symbol.asyncIterator]();
  await it.next();
  assert.equal(engine.capacity(), 2);
  for (let r = await it.next(); !r.done; r = await it.next());
  await engine.close();
  assert.equal(engine.capacity(), 0);
});

test('a stopped request does not count its worker until the worker has unwound it; the listener then says capacity is back', () =>
  withEngine({ warmup: false }, async (engine) => {
    const ctrl = new AbortController();
    let back: Promise<void> | undefined;
    let during = -1;
    const events = [];
    for await (const ev of engine.generate(request(askAbout([200, 30, 30]), { maxTokens: 1500 }), ctrl.signal)) {
      events.push(ev);
      if (ev.type === 'token' && !back) {
        back = nextCapacityChange(engine);
        ctrl.abort();
        // The stop flag is raised, but the worker has not answered yet: the caller may let go of
        // this request now, so the worker must not be offered to the next one.
        during = engine.capacity();
      }
    }
    assert.equal(during, 0);
    assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'cancelled' });
    await countsAndAnswersAgain(engine, back);
  }));

test('a crashed worker stops counting at once, and counts again (with a listener call) once restarted and warmed', () =>
  withEngine({}, async (engine) => {
    let back: Promise<void> | undefined;
    let afterCrash = -1;
    const events = [];
    for await (const ev of engine.generate(
      request(askAbout([200, 30, 30]), { maxTokens: 1500 }),
      new AbortController().signal,
    )) {
      events.push(ev);
      if (events.length === 2) engine.simulateWorkerCrash(0);
      if (ev.type === 'error') {
        afterCrash = engine.capacity();
        back = nextCapacityChange(engine);
      }
    }
    const last = events.at(-1);
    assert.equal(last?.type === 'error' && last.error.code, 'engine_error');
    assert.equal(afterCrash, 0);
    await countsAndAnswersAgain(engine, back);
  }));

test('an unsubscribed listener is not called', async () => {
  const engine = createEmbeddedEngine(fixtureConfig({ warmup: false }), quietLogger);
  let calls = 0;
  const off = engine.onCapacityChange(() => calls++);
  off();
  const kept = nextCapacityChange(engine);
  await engine.start();
  await kept;
  await engine.close();
  assert.equal(calls, 0);
});

test('served over HTTP, the scheduler admits as many generations as there are workers', async (t) => {
  const g = await startGlimpse({ engine: 'embedded', modelPath: FIXTURE, embeddedWorkers: 2, warmup: false });
  t.after(() => g.close());
  assert.equal(g.pipeline.stats().maxInFlight, 2);
});
