import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseToken, createRng } from '../../src/engines/embedded/sampling.js';
import { IncrementalDecoder, StopMatcher } from '../../src/engines/embedded/text-stream.js';

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
