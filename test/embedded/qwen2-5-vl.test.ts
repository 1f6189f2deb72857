/**
 * The embedded engine on Qwen2.5-VL's architecture (Qwen2_5_VLForConditionalGeneration,
 * Qwen2_5_VLProcessor: 14 px patches merged 2x2, images between <|vision_start|> and
 * <|vision_end|>, 3-D rotary positions over rotated halves), through a random-weight model that
 * `npm run make-tiny-vlm -- --arch qwen2.5-vl` writes here (not committed): its answers checked
 * token for token against transformers.js called directly in this process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoModelForImageTextToText, AutoProcessor, env } from '@huggingface/transformers';
import { createEmbeddedEngine, type EmbeddedEngine } from '../../src/engines/embedded/index.js';
import { fixtureConfig, quietLogger } from './helpers.js';
import { assertCancelWithinOneStep, assertSameAsDirect, directReference, type Turn } from './patch-vlm.js';

env.allowRemoteModels = false;

const work = mkdtempSync(join(tmpdir(), 'glimpse-qwen25vl-'));
const makeModel = (out: string): void => {
  const script = new URL('../../scripts/make-tiny-vlm.ts', import.meta.url).pathname;
  execFileSync(process.execPath, ['--import', 'tsx', script, '--arch', 'qwen2.5-vl', out], { stdio: 'pipe' });
};
const MODEL = join(work, 'model');

let engine: EmbeddedEngine;
let model: Awaited<ReturnType<typeof AutoModelForImageTextToText.from_pretrained>>;
let direct: ReturnType<typeof directReference>;

before(async () => {
  makeModel(MODEL);
  engine = createEmbeddedEngine(fixtureConfig({ modelPath: MODEL }), quietLogger);
  let processor: Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;
  [processor, model] = await Promise.all([
    AutoProcessor.from_pretrained(MODEL),
    AutoModelForImageTextToText.from_pretrained(MODEL, { dtype: 'fp32' }),
    engine.start(),
  ]);
  assert.equal(engine.health().ready, true, engine.health().reason);
  assert.equal(model.constructor.name, 'Qwen2_5_VLForConditionalGeneration');
  assert.equal(processor.constructor.name, 'Qwen2_5_VLProcessor');
  direct = directReference(processor, model);
});

after(async () => {
  await engine?.close();
  await model?.dispose();
  rmSync(work, { recursive: true, force: true });
});

test('the generator writes the same bytes twice', () => {
  const again = join(work, 'again');
  makeModel(again);
  const names = (readdirSync(MODEL, { recursive: true }) as string[]).sort();
  assert.deepEqual((readdirSync(again, { recursive: true }) as string[]).sort(), names);
  for (const n of names.filter((n) => n.includes('.')))
    assert.ok(readFileSync(join(again, n)).equals(readFileSync(join(MODEL, n))), `${n} differs between two runs`);
});

// Grids Qwen2-VL's resize rule gives (sides rounded to 28 px, at least 56x56 px, aspect kept),
// worked out by hand: [frames, rows, columns] of 14 px patches.
const SHAPES: { size: [number, number]; grid: number[] }[] = [
  { size: [120, 60], grid: [1, 4, 8] }, // landscape: 112x56
  { size: [60, 120], grid: [1, 8, 4] }, // portrait
  { size: [300, 40], grid: [1, 2, 22] }, // a long strip of text: 308x28
  { size: [20, 20], grid: [1, 4, 4] }, // tiny square, scaled up to the 56x56 minimum
  { size: [280, 200], grid: [1, 14, 20] }, // sides already multiples of 28 (or nearly)
];

for (const { size, grid } of SHAPES) {
  test(`Qwen2.5-VL, a ${size[0]}x${size[1]} image: patch grid ${grid.join('x')}, the same answer and exact usage as transformers.js`, async () => {
    const ref = await assertSameAsDirect(
      engine,
      direct,
      [{ role: 'user', parts: [size, 'What is written here?'] }],
      12,
    );
    assert.deepEqual(ref.grids, [grid]);
    // The one <|image_pad|> in the prompt became rows x columns / 4 tokens (2x2 patches merge into one).
    assert.equal(ref.promptTokens, ref.textOnlyTokens - 1 + (grid[0] * grid[1] * grid[2]) / 4);
  });
}

test('Qwen2.5-VL, two images of different shapes after a system prompt and an earlier exchange: the same answer as transformers.js', async () => {
  const turns: Turn[] = [
    { role: 'system', parts: ['You describe pictures.'] },
    { role: 'user', parts: ['What is this?', [120, 60]] },
    { role: 'assistant', parts: ['A chart.'] },
    { role: 'user', parts: [[60, 120], [300, 40], 'Compare the two images.'] },
  ];
  const ref = await assertSameAsDirect(engine, direct, turns, 10);
  assert.deepEqual(ref.grids, [
    [1, 4, 8],
    [1, 8, 4],
    [1, 2, 22],
  ]);
});

test('a text-only Qwen2.5-VL request: the same answer and usage as transformers.js', async () => {
  const ref = await assertSameAsDirect(engine, direct, [{ role: 'user', parts: ['Say something.'] }], 8);
  assert.deepEqual(ref.grids, []);
});

test('a Qwen2.5-VL request cancelled as it reaches the worker stops within one step, and the worker serves the next', async () => {
  await assertCancelWithinOneStep(engine, [120, 60], 'Describe.');
});
