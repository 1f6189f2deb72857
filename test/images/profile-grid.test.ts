/**
 * A model profile's image bound and patch grid in the image pipeline: images are shrunk into the
 * profile's bound and their sides cut down to multiples of its grid (28 px for GLM-V: 14 px patches
 * merged 2x2), so the processor has nothing to resample and no pixel is sent only to be dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { GenerateRequest, ImagePart } from '../../src/core/index.js';
import { fitToGrid, imageSettings, maxEdgeFor, resolveImages } from '../../src/images/index.js';
import { jpeg, png } from './fixtures.js';

const GLM = { imageMaxEdge: 2048, patchGrid: 28 };

test('fitToGrid: inside the edge, never enlarged, each side down to a multiple of the grid, at least one cell', () => {
  assert.deepEqual(fitToGrid(3000, 2000, 2048, 28), { width: 2044, height: 1344 }); // 2048 x 1365.3 -> 73 x 48 cells
  assert.deepEqual(fitToGrid(1000, 700, 2048, 28), { width: 980, height: 700 }); // small enough: only the rounding acts
  assert.deepEqual(fitToGrid(2044, 1344, 2048, 28), { width: 2044, height: 1344 }); // already on the grid: unchanged
  assert.deepEqual(fitToGrid(2000, 3000, 1024, 28), { width: 672, height: 1008 }); // portrait, 682.7 x 1024
  assert.deepEqual(fitToGrid(20, 500, 2048, 28), { width: 28, height: 476 }); // a side below one cell gets one cell
});

test("maxEdgeFor: the operator's per-model entry, else images.maxEdge capped by the loaded profile's bound", () => {
  const s = { ...imageSettings(), maxEdge: 1024, maxEdgeByModel: { 'glm-ocr': 1400 } };
  assert.equal(maxEdgeFor(s, 'glm-ocr', GLM), 1400);
  assert.equal(maxEdgeFor(s, 'other', GLM), 1024);
  assert.equal(maxEdgeFor({ ...s, maxEdge: 4096 }, 'other', GLM), 2048);
  assert.equal(maxEdgeFor(s, 'other', { imageMaxEdge: 448 }), 448);
  assert.equal(maxEdgeFor(s, 'other'), 1024);
});

function request(parts: Omit<ImagePart, 'type'>[]): GenerateRequest {
  return {
    id: 'r',
    model: 'glm-ocr',
    sampling: { maxTokens: 8, temperature: 0, topP: 1, stop: [] },
    messages: [{ role: 'user', content: parts.map((p) => ({ type: 'image' as const, ...p })) }],
  };
}

const sizes = (req: GenerateRequest) =>
  req.messages[0]!.content.map((p) => (p.type === 'image' ? [p.resolved!.width, p.resolved!.height] : []));

test('resolveImages with a profile: every image in its grid within its bound, pixels and encoded bytes alike', async () => {
  const parts = [
    { source: { kind: 'bytes' as const, data: await jpeg(3000, 2000) } },
    { source: { kind: 'bytes' as const, data: await png(1000, 700) } },
    { source: { kind: 'bytes' as const, data: await png(300, 301) } },
    // OpenAI's detail 'low' (one 512 px view) is put in the grid too
    { source: { kind: 'bytes' as const, data: await png(1000, 700) }, detail: 'low' as const },
  ];
  const pixels = request(parts);
  // images.maxEdge raised to 4096 by the operator: the profile's 2048 is the bound that acts
  const raised = { images: { ...imageSettings(), maxEdge: 4096 } };
  await resolveImages(pixels, raised, undefined, { profile: GLM, output: 'pixels' });
  assert.deepEqual(sizes(pixels), [
    [2044, 1344],
    [980, 700],
    [280, 280],
    [504, 336],
  ]);
  for (const p of pixels.messages[0]!.content)
    if (p.type === 'image') assert.equal(p.resolved!.rgb!.data.length, p.resolved!.width * p.resolved!.height * 3);

  // with the default images.maxEdge (1024) that one stays under it
  const encoded = request(parts.slice(0, 1));
  await resolveImages(encoded, undefined, undefined, { profile: GLM });
  const img = encoded.messages[0]!.content[0]!;
  const meta = await sharp(img.type === 'image' ? img.resolved!.data! : Buffer.alloc(0)).metadata();
  assert.deepEqual([meta.width, meta.height], [1008, 672]);
});

test('an EXIF-rotated photo is put in the grid after it is turned upright', async () => {
  // Stored 1000 x 700, orientation 6 (turn 90 degrees): upright it is 700 x 1000.
  const rotated = await sharp(await jpeg(1000, 700))
    .withMetadata({ orientation: 6 })
    .jpeg()
    .toBuffer();
  const req = request([{ source: { kind: 'bytes', data: rotated } }]);
  await resolveImages(req, undefined, undefined, { profile: GLM, output: 'pixels' });
  assert.deepEqual(sizes(req), [[700, 980]]);
});

test('without a profile grid nothing changes: a model that pads into tiles (SmolVLM) keeps its sides', async () => {
  const req = request([{ source: { kind: 'bytes', data: await png(1000, 700) } }]);
  await resolveImages(req, undefined, undefined, { profile: { imageMaxEdge: 2048 }, output: 'pixels' });
  assert.deepEqual(sizes(req), [[1000, 700]]);
});
