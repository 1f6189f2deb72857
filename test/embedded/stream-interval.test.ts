/**
 * --stream-interval-ms on the real worker: the first token goes out at once, later ones in pieces
 * no more often than the interval, and the text is the same whatever the interval (with and
 * without stop strings, which switch the worker between decoding per piece and per token).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedEngine, type EmbeddedEngine } from '../../src/engines/embedded/index.js';
import { askAbout, collect, fixtureConfig, quietLogger, request } from './helpers.js';

let each: EmbeddedEngine;
let slow: EmbeddedEngine;

before(async () => {
  each = createEmbeddedEngine(fixtureConfig({ streamIntervalMs: 0, warmup: false }), quietLogger);
  slow = createEmbeddedEngine(fixtureConfig({ streamIntervalMs: 1000, warmup: false }), quietLogger);
  await Promise.all([each.start(), slow.start()]);
});

after(async () => {
  await Promise.all([each.close(), slow.close()]);
});

const never = () => new AbortController().signal;

test('interval 0 sends pieces as tokens come; a long interval sends the first at once and joins the rest; same text', async () => {
  const req = () => request(askAbout([200, 30, 30]), { maxTokens: 40, temperature: 0.9, seed: 7 });
  const gather = async (engine: EmbeddedEngine) => {
    const events = [];
    for await (const ev of engine.generate(req(), never())) events.push(ev);
    const pieces = events.flatMap((ev) => (ev.type === 'token' ? [ev.text] : []));
    const summary = await collect(
      (async function* () {
        yield* events;
      })(),
    );
    return { pieces, summary };
  };
  const a = await gather(each);
  const b = await gather(slow);
  assert.equal(b.summary.text, a.summary.text);
  assert.equal(b.summary.usage?.completionTokens, a.summary.usage?.completionTokens);
  assert.ok(
    a.pieces.length >= 10,
    `interval 0: ${a.pieces.length} pieces for ${a.summary.usage?.completionTokens} tokens`,
  );
  // Not a clock reading: had the first token waited for the interval, the tokens decoded meanwhile
  // would have joined it, and its piece would be longer than the first piece at interval 0.
  assert.equal(b.pieces[0], a.pieces[0], 'the first token went out on its own, at once');
  assert.ok(
    b.pieces.length < a.pieces.length / 2,
    `interval 1000 ms joins the rest: ${b.pieces.length} pieces against ${a.pieces.length}`,
  );
});

test('with stop strings (decoded token by token) the cut is the same at any interval', async () => {
  const probe = await collect(
    each.generate(request(askAbout([20, 40, 220]), { maxTokens: 30, temperature: 0.9, seed: 3 }), never()),
  );
  // A stop string taken from the middle of the unconstrained answer.
  const stop = probe.text.slice(8, 11);
  assert.ok(stop.length === 3, `probe answer long enough: ${JSON.stringify(probe.text)}`);
  const req = () => request(askAbout([20, 40, 220]), { maxTokens: 30, temperature: 0.9, seed: 3, stop: [stop] });
  const [x, y] = await Promise.all([collect(each.generate(req(), never())), collect(slow.generate(req(), never()))]);
  assert.equal(x.text, probe.text.slice(0, probe.text.indexOf(stop)));
  assert.equal(y.text, x.text);
  assert.deepEqual(
    [x.terminal, y.terminal].map((t) => t.type === 'done' && t.finishReason),
    ['stop', 'stop'],
  );
});
