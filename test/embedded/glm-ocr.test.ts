/**
 * The embedded engine on GLM-OCR's architecture (GlmOcrForConditionalGeneration, Glm46VProcessor:
 * 14 px patches merged 2x2, temporal patch 2, 3-D rotary positions), through the random-weight
 * fixture in fixtures/tiny-glm-ocr: its answers checked token for token against transformers.js
 * called directly in this process, on images of several shapes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoModelForImageTextToText, AutoProcessor, env } from '@huggingface/transformers';
import { createEmbeddedEngine, type EmbeddedEngine } from '../../src/engines/embedded/index.js';
import { fixtureConfig, GLM_FIXTURE, quietLogger } from './helpers.js';
import { assertCancelWithinOneStep, assertSameAsDirect, directReference, type Turn } from './patch-vlm.js';

env.allowRemoteModels = false;

let engine: EmbeddedEngine;
let processor: Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;
let model: Awaited<ReturnType<typeof AutoModelForImageTextToText.from_pretrained>>;
let direct: ReturnType<typeof directReference>;

before(async () => {
  engine = createEmbeddedEngine(fixtureConfig({ modelPath: GLM_FIXTURE }), quietLogger);
  [processor, model] = await Promise.all([
    AutoProcessor.from_pretrained(GLM_FIXTURE),
    AutoModelForImageTextToText.from_pretrained(GLM_FIXTURE, { dtype: 'fp32' }),
    engine.start(),
  ]);
  assert.equal(engine.health().ready, true, engine.health().reason);
  direct = directReference(processor, model);
});

after(async () => {
  await engine.close();
  await model.dispose();
});

// Grids GLM-V's resize rule gives (sides rounded to 28 px, at least 12,544 px counting the two
// temporal frames, aspect kept), worked out by hand: [frames, rows, columns] of 14 px patches.
const SHAPES: { size: [number, number]; grid: number[] }[] = [
  { size: [64, 48], grid: [1, 6, 8] }, // landscape, scaled up to 112x84
  { size: [48, 64], grid: [1, 8, 6] }, // portrait
  { size: [300, 40], grid: [1, 2, 22] }, // a long strip of text
  { size: [30, 30], grid: [1, 6, 6] }, // tiny square, scaled up to 84x84
  { size: [280, 200], grid: [1, 14, 20] }, // already large enough: sides rounded to 28
];

for (const { size, grid } of SHAPES) {
  test(`a ${size[0]}x${size[1]} image: patch grid ${grid.join('x')}, the same answer and exact usage as transformers.js`, async () => {
    const ref = await assertSameAsDirect(engine, direct, [{ role: 'user', parts: [size, 'Text Recognition:'] }], 12);
    assert.deepEqual(ref.grids, [grid]);
    // The one <|image|> in the prompt became rows x columns / 4 tokens (2x2 patches merge into one).
    assert.equal(ref.promptTokens, ref.textOnlyTokens - 1 + (grid[0] * grid[1] * grid[2]) / 4);
  });
}

test('two images of different shapes in one turn, after a system prompt and an earlier exchange: the same answer as transformers.js', async () => {
  const turns: Turn[] = [
    { role: 'system', parts: ['You read documents.'] },
    { role: 'user', parts: ['Table Recognition:', [64, 48]] },
    { role: 'assistant', parts: ['| a | b |'] },
    { role: 'user', parts: [[48, 64], [300, 40], 'Formula Recognition:'] },
  ];
  const ref = await assertSameAsDirect(engine, direct, turns, 10);
  assert.deepEqual(ref.grids, [
    [1, 6, 8],
    [1, 8, 6],
    [1, 2, 22],
  ]);
});

test('a GLM-OCR request cancelled as it reaches the worker stops within one step, and the worker serves the next', async () => {
  await assertCancelWithinOneStep(engine, [64, 48], 'Text Recognition:');
});
