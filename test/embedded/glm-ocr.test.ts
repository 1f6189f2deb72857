/**
 * The embedded engine on GLM-OCR's architecture (GlmOcrForConditionalGeneration, Glm46VProcessor:
 * 14 px patches merged 2x2, temporal patch 2, 3-D rotary positions), through the random-weight
 * fixture in fixtures/tiny-glm-ocr: its answers checked token for token against transformers.js
 * called directly in this process, on images of several shapes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoModelForImageTextToText, AutoProcessor, RawImage, cat, env, type Tensor } from '@huggingface/transformers';
import { createEmbeddedEngine, type EmbeddedEngine } from '../../src/engines/embedded/index.js';
import type { ChatMessage, ImagePart } from '../../src/core/index.js';
import { collect, fixtureConfig, GLM_FIXTURE, quietLogger, request } from './helpers.js';

env.allowRemoteModels = false;

let engine: EmbeddedEngine;
let processor: Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;
let model: Awaited<ReturnType<typeof AutoModelForImageTextToText.from_pretrained>>;

before(async () => {
  engine = createEmbeddedEngine(fixtureConfig({ modelPath: GLM_FIXTURE }), quietLogger);
  [processor, model] = await Promise.all([
    AutoProcessor.from_pretrained(GLM_FIXTURE),
    AutoModelForImageTextToText.from_pretrained(GLM_FIXTURE, { dtype: 'fp32' }),
    engine.start(),
  ]);
  assert.equal(engine.health().ready, true, engine.health().reason);
});

after(async () => {
  await engine.close();
  await model.dispose();
});

/** A diagonal gradient (not a flat colour, so every patch differs), as 8-bit RGB. */
function gradient(width: number, height: number): Buffer {
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) px.set([(x * 7) % 256, (y * 5) % 256, ((x + y) * 3) % 256], (y * width + x) * 3);
  return px;
}

function image(width: number, height: number): ImagePart {
  return {
    type: 'image',
    source: { kind: 'bytes', data: Buffer.alloc(0) },
    resolved: { width, height, sourceFormat: 'png', sha256: '', rgb: { data: gradient(width, height), width, height } },
  };
}

type Turn = { role: 'system' | 'user' | 'assistant'; parts: (string | [number, number])[] };

const toMessages = (turns: Turn[]): ChatMessage[] =>
  turns.map((t) => ({
    role: t.role,
    content: t.parts.map((p) => (typeof p === 'string' ? { type: 'text' as const, text: p } : image(p[0], p[1]))),
  }));

/** transformers.js on its own, greedy: the reference answer, its prompt length and the images' grids. */
async function direct(turns: Turn[], maxNewTokens: number) {
  const images = turns.flatMap((t) =>
    t.parts
      .filter((p): p is [number, number] => typeof p !== 'string')
      .map(([w, h]) => new RawImage(new Uint8ClampedArray(gradient(w, h)), w, h, 3)),
  );
  const chat = turns.map((t) => ({
    role: t.role,
    content: t.parts.map((p) => (typeof p === 'string' ? { type: 'text', text: p } : { type: 'image' })),
  }));
  const prompt = processor.apply_chat_template(chat, { add_generation_prompt: true }) as string;
  const inputs = (images.length > 1 ? await separately(prompt, images) : await processor(prompt, images)) as Record<
    string,
    Tensor
  >;
  const n = inputs.input_ids.dims.at(-1)!;
  const out = (await model.generate({ ...inputs, max_new_tokens: maxNewTokens, do_sample: false })) as Tensor;
  const ids = (out.slice(null, [n, null]).tolist() as bigint[][])[0].map(Number);
  const grids = inputs.image_grid_thw ? (inputs.image_grid_thw.tolist() as bigint[][]).map((r) => r.map(Number)) : [];
  return {
    text: processor.tokenizer!.decode(ids, { skip_special_tokens: true }),
    ids,
    promptTokens: n,
    grids,
    textOnlyTokens: processor.tokenizer!(prompt).input_ids.dims.at(-1)!,
  };
}

/**
 * Several images as the Python processor takes them: each through the image processor on its own,
 * each <|image|> widened to its own token count. (transformers.js's processor takes a list of
 * images as the frames of one video; glimpse does this instead: src/engines/embedded/vl-inputs.ts.)
 */
async function separately(prompt: string, images: InstanceType<typeof RawImage>[]) {
  const ip = processor.image_processor as unknown as (
    i: unknown,
  ) => Promise<{ pixel_values: Tensor; image_grid_thw: Tensor }>;
  const parts = [];
  for (const img of images) parts.push(await ip(img));
  let text = prompt;
  for (const p of parts) {
    const [t, h, w] = (p.image_grid_thw.tolist() as bigint[][])[0].map(Number);
    text = text.replace('<|image|>', '<|placeholder|>'.repeat((t * h * w) / 4));
  }
  text = text.replaceAll('<|placeholder|>', '<|image|>');
  return {
    ...(processor.tokenizer!(text) as object),
    pixel_values: cat(parts.map((p) => p.pixel_values)),
    image_grid_thw: cat(parts.map((p) => p.image_grid_thw)),
  };
}

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
    const turns: Turn[] = [{ role: 'user', parts: [size, 'Text Recognition:'] }];
    const [got, ref] = await Promise.all([
      collect(engine.generate(request(toMessages(turns), { maxTokens: 12 }), new AbortController().signal)),
      direct(turns, 12),
    ]);
    assert.deepEqual(ref.grids, [grid]);
    // The one <|image|> in the prompt became rows x columns / 4 tokens (2x2 patches merge into one).
    assert.equal(ref.promptTokens, ref.textOnlyTokens - 1 + (grid[0] * grid[1] * grid[2]) / 4);
    assert.equal(got.text, ref.text);
    assert.deepEqual(got.usage, { promptTokens: ref.promptTokens, completionTokens: ref.ids.length });
    assert.equal(got.terminal.type, 'done');
  });
}

test('two images of different shapes in one turn, after a system prompt and an earlier exchange: the same answer as transformers.js', async () => {
  const turns: Turn[] = [
    { role: 'system', parts: ['You read documents.'] },
    { role: 'user', parts: ['Table Recognition:', [64, 48]] },
    { role: 'assistant', parts: ['| a | b |'] },
    { role: 'user', parts: [[48, 64], [300, 40], 'Formula Recognition:'] },
  ];
  const [got, ref] = await Promise.all([
    collect(engine.generate(request(toMessages(turns), { maxTokens: 10 }), new AbortController().signal)),
    direct(turns, 10),
  ]);
  assert.deepEqual(ref.grids, [
    [1, 6, 8],
    [1, 8, 6],
    [1, 2, 22],
  ]);
  assert.equal(got.text, ref.text);
  assert.deepEqual(got.usage, { promptTokens: ref.promptTokens, completionTokens: ref.ids.length });
});

test('a GLM-OCR request cancelled as it reaches the worker stops within one step, and the worker serves the next', async () => {
  const ctrl = new AbortController();
  const stream = engine.generate(
    request(toMessages([{ role: 'user', parts: [[64, 48], 'Text Recognition:'] }]), { maxTokens: 500 }),
    ctrl.signal,
  );
  const it = stream[Symbol.asyncIterator]();
  const first = it.next();
  ctrl.abort();
  const events = [];
  for (let r = await first; !r.done; r = await it.next()) events.push(r.value);
  assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'cancelled' });
  const usage = events.find((e) => e.type === 'usage');
  // The flag is read before decoding and after every step: at most the step already under way.
  assert.ok(!usage || (usage.type === 'usage' && usage.usage.completionTokens <= 1), JSON.stringify(usage));
  const next = await collect(
    engine.generate(
      request(toMessages([{ role: 'user', parts: [[30, 30], 'Text Recognition:'] }]), { maxTokens: 3 }),
      new AbortController().signal,
    ),
  );
  assert.equal(next.usage?.completionTokens, 3);
});
