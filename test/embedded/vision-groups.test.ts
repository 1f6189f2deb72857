/**
 * Tiles through the vision encoder in groups: same features as one run, fewer tiles at a time,
 * cancellation between groups. A fake encoder stands in for onnxruntime (the real fixture's tiles
 * are too small to be grouped; the SmolVLM-sized run is in docs/embedded.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '@huggingface/transformers';
import {
  CancelledBeforeDecoding,
  groupedTileEncoder,
  type EncodeImage,
} from '../../src/engines/embedded/vision-groups.js';

const TOKENS = 2;
const HIDDEN = 3;

/** pixel_values [1, tiles, 3, size, size] whose tile t is filled with the value t + 1. */
function tiles(n: number, size: number) {
  const per = 3 * size * size;
  const data = new Float32Array(n * per);
  for (let t = 0; t < n; t++) data.fill(t + 1, t * per, (t + 1) * per);
  return {
    pixel_values: new Tensor('float32', data, [1, n, 3, size, size]),
    pixel_attention_mask: new Tensor('bool', new Uint8Array(n * size * size).fill(1), [1, n, size, size]),
  };
}

/** A vision encoder: features of tile t are (tile value, token, channel) mixes; records the tiles of each run. */
function fakeEncoder(layout: 'per-tile' | 'one-row') {
  const runs: number[][] = [];
  const encode: EncodeImage = async (inputs) => {
    const pv = inputs.pixel_values!;
    const [, n, , h, w] = pv.dims as number[];
    const per = 3 * h! * w!;
    const values = Array.from({ length: n! }, (_, t) => (pv.data as Float32Array)[t * per]!);
    assert.equal(inputs.pixel_attention_mask!.dims[1], n, 'the mask is cut like the pixels');
    runs.push(values);
    const out = new Float32Array(n! * TOKENS * HIDDEN);
    values.forEach((v, t) => {
      for (let k = 0; k < TOKENS * HIDDEN; k++) out[t * TOKENS * HIDDEN + k] = v * 10 + k;
    });
    return new Tensor('float32', out, layout === 'per-tile' ? [n!, TOKENS, HIDDEN] : [1, n! * TOKENS, HIDDEN]);
  };
  return { encode, runs };
}

for (const layout of ['per-tile', 'one-row'] as const) {
  test(`13 large tiles go through 2 at a time and give the features of one run (${layout} features)`, async () => {
    const whole = fakeEncoder(layout);
    const grouped = fakeEncoder(layout);
    const input = tiles(13, 512);
    const expected = await whole.encode(input);
    const got = await groupedTileEncoder(grouped.encode, 2, () => false)(input);
    assert.deepEqual(got.dims, expected.dims);
    assert.deepEqual(Array.from(got.data as Float32Array), Array.from(expected.data as Float32Array));
    assert.deepEqual(grouped.runs, [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13]]);
  });
}

test('few or small tiles stay in one run, and group 0 turns grouping off', async () => {
  for (const [n, size, group] of [
    [4, 512, 2],
    [13, 32, 2],
    [2, 1024, 2],
    [13, 512, 0],
    [3, 1024, 3],
  ] as const) {
    const enc = fakeEncoder('per-tile');
    await groupedTileEncoder(enc.encode, group, () => false)(tiles(n, size));
    assert.equal(enc.runs.length, 1, `${n} tiles of ${size} px, group ${group}`);
  }
});

test('a cancelled request stops between groups: no further run starts', async () => {
  const enc = fakeEncoder('per-tile');
  let cancelled = false;
  const wrapped = groupedTileEncoder(
    async (inputs) => {
      const out = await enc.encode(inputs);
      if (enc.runs.length === 2) cancelled = true; // the client leaves during the second group
      return out;
    },
    2,
    () => cancelled,
  );
  await assert.rejects(wrapped(tiles(13, 512)), CancelledBeforeDecoding);
  assert.equal(enc.runs.length, 2);
});
