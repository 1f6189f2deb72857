import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPenalties, chooseToken, createRng } from '../../src/engines/embedded/sampling.js';
import { IncrementalDecoder, StopMatcher, TextCoalescer } from '../../src/engines/embedded/text-stream.js';

test('a stop string split across several tokens is cut out, and nothing after it is emitted', () => {
  const m = new StopMatcher(['END']);
  const out = ['Hello E', 'N', 'D and more'].map((t) => m.push(t)).join('') + m.flush();
  assert.equal(out, 'Hello ');
  assert.equal(m.stopped, true);
});

test('text that only looks like the start of a stop string is released once it is not', () => {
  const m = new StopMatcher(['STOP']);
  assert.equal(m.push('a ST'), 'a ');
  assert.equal(m.push('AR'), 'STAR');
  assert.equal(m.flush(), '');
  assert.equal(m.stopped, false);
});

test('the earliest of several stop strings wins', () => {
  const m = new StopMatcher(['world', 'lo']);
  assert.equal(m.push('hello world'), 'hel');
});

test('a multi-byte character split over two tokens is emitted whole, once', () => {
  // Token 1 and 2 are the two halves of "é" (0xC3 0xA9); token 0 is "a".
  const bytes: Record<number, number[]> = { 0: [0x61], 1: [0xc3], 2: [0xa9] };
  const dec = new IncrementalDecoder((ids) => new TextDecoder().decode(Uint8Array.from(ids.flatMap((i) => bytes[i]!))));
  const pieces = [0, 1, 2, 0].map((i) => dec.push(i));
  assert.deepEqual(pieces, ['a', '', 'é', 'a']);
  assert.equal(dec.flush(), '');
});

test('the same seed gives the same draws and a different seed different ones', () => {
  const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 2);
  const draw = (seed: number) => {
    const rng = createRng(seed);
    return Array.from({ length: 40 }, () => chooseToken(logits, { temperature: 1, topP: 1 }, rng));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

test('temperature 0 is greedy and top_p keeps only the most likely tokens', () => {
  const logits = Float32Array.from([0, 5, 1, 4.9, -3]);
  assert.equal(chooseToken(logits, { temperature: 0, topP: 1 }, Math.random), 1);
  const rng = createRng(3);
  const seen = new Set(Array.from({ length: 300 }, () => chooseToken(logits, { temperature: 1, topP: 0.5 }, rng)));
  assert.deepEqual([...seen], [1]);
  const wide = new Set(Array.from({ length: 300 }, () => chooseToken(logits, { temperature: 1, topP: 0.9 }, rng)));
  assert.deepEqual([...wide].sort(), [1, 3]);
});

test('the coalescer sends the first piece at once, joins pieces within the interval, and loses nothing', async () => {
  let clock = 0;
  const sent: Array<[number, string]> = [];
  const c = new TextCoalescer(20, (t) => sent.push([clock, t]), { now: () => clock });
  c.push('A');
  assert.deepEqual(sent, [[0, 'A']], 'the first token never waits');
  clock = 5;
  c.push('b');
  clock = 9;
  c.push('');
  c.push('c');
  assert.equal(sent.length, 1, 'pieces within the interval wait');
  clock = 25;
  c.push('d'); // a timer is pending: joins it
  c.flush();
  assert.deepEqual(sent, [
    [0, 'A'],
    [25, 'bcd'],
  ]);
  clock = 100;
  c.push('e');
  assert.deepEqual(sent.at(-1), [100, 'e'], 'a piece after a quiet interval goes at once');
  c.flush();
  assert.equal(sent.length, 3, 'flush with nothing waiting sends nothing');

  // With the real clock: the timer delivers what waits without another push.
  const real: string[] = [];
  const r = new TextCoalescer(15, (t) => real.push(t));
  r.push('x');
  r.push('y');
  r.push('z');
  assert.deepEqual(real, ['x']);
  await new Promise((res) => setTimeout(res, 40));
  assert.deepEqual(real, ['x', 'yz']);

  // Interval 0: every piece on its own.
  const each: string[] = [];
  const e = new TextCoalescer(0, (t) => each.push(t));
  for (const t of ['1', '2', '3']) e.push(t);
  assert.deepEqual(each, ['1', '2', '3']);
});

test('with a source, the coalescer decodes what piled up once per piece, and a split character waits whole', () => {
  // Token ids are bytes of UTF-8 text; "é" is two of them.
  const bytes = Buffer.from('hé!', 'utf8');
  const decoder = new IncrementalDecoder((ids) => Buffer.from(ids).toString('utf8'));
  let clock = 0;
  let decodes = 0;
  const sent: string[] = [];
  const c = new TextCoalescer(20, (t) => sent.push(t), {
    now: () => clock,
    source: () => {
      decodes++;
      return decoder.take();
    },
  });
  decoder.add(bytes[0]!);
  c.poke(); // first piece: at once
  assert.deepEqual(sent, ['h']);
  clock = 1;
  decoder.add(bytes[1]!); // first byte of "é"
  c.poke();
  clock = 2;
  decoder.add(bytes[2]!);
  c.poke();
  decoder.add(bytes[3]!);
  c.poke();
  assert.equal(decodes, 1, 'nothing decoded while the interval runs');
  c.flush();
  assert.deepEqual(sent, ['h', 'é!']);
  assert.equal(decodes, 2, 'three tokens, one decode');
  // A piece whose last character is incomplete is held back, not sent broken.
  decoder.add(0xc3);
  clock = 50;
  c.poke();
  assert.deepEqual(sent, ['h', 'é!']);
  decoder.add(0xa9);
  c.flush();
  assert.deepEqual(sent, ['h', 'é!', 'é']);
});

test('top_k and min_p narrow the draw to the most likely tokens', () => {
  const logits = [3, 2.9, 2.8, 0, -1, -2];
  const rng = createRng(7);
  const drawn = (choice: { topK?: number; minP?: number }) =>
    new Set(Array.from({ length: 400 }, () => chooseToken(logits, { temperature: 1, topP: 1, ...choice }, rng)));
  assert.deepEqual([...drawn({ topK: 2 })].sort(), [0, 1]);
  assert.deepEqual([...drawn({ topK: 1 })], [0]);
  // exp(-3) ~ 0.05 of the top token's odds: min_p 0.1 keeps the three near the top only.
  assert.deepEqual([...drawn({ minP: 0.1 })].sort(), [0, 1, 2]);
  assert.ok(drawn({}).size >= 4, 'without them, unlikely tokens are drawn too');
});

test('penalties: repetition divides positive and multiplies negative logits of seen tokens; presence once, frequency per occurrence', () => {
  const logits = new Float64Array([2, -2, 1, 1, 1]);
  applyPenalties(logits, { repetitionPenalty: 2 }, [0], [1]);
  assert.deepEqual([...logits], [1, -4, 1, 1, 1]);
  const l2 = new Float64Array([1, 1, 1, 1]);
  applyPenalties(l2, { presencePenalty: 0.5, frequencyPenalty: 0.25 }, [3, 3], [1, 2, 2, 2]);
  assert.deepEqual(
    [...l2],
    [1, 1 - 0.5 - 0.25, 1 - 0.5 - 0.75, 1],
    'prompt tokens (3) are not penalised by presence/frequency',
  );
});
