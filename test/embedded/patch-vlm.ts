/**
 * For tests of the Qwen2-VL family in the embedded engine (GLM-OCR, Qwen2.5-VL): images built
 * from known pixels, conversations written once and sent both through glimpse and through
 * transformers.js itself, whose greedy answer, prompt length and image grids are the reference.
 */
import { AutoModelForImageTextToText, AutoProcessor, RawImage, cat, type Tensor } from '@huggingface/transformers';
import assert from 'node:assert/strict';
import type { ChatMessage, ImagePart } from '../../src/core/index.js';
import type { EmbeddedEngine } from '../../src/engines/embedded/index.js';
import { collect, request, startThenCancel } from './helpers.js';

/** A diagonal gradient (not a flat colour, so every patch differs), as 8-bit RGB. */
export function gradient(width: number, height: number): Buffer {
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) px.set([(x * 7) % 256, (y * 5) % 256, ((x + y) * 3) % 256], (y * width + x) * 3);
  return px;
}

/** An image already decoded, as the media pipeline hands it to the engine. */
function image(width: number, height: number): ImagePart {
  return {
    type: 'image',
    source: { kind: 'bytes', data: Buffer.alloc(0) },
    resolved: { width, height, sourceFormat: 'png', sha256: '', rgb: { data: gradient(width, height), width, height } },
  };
}

/** One turn: its text and its images ([width, height]) in order. */
export type Turn = { role: 'system' | 'user' | 'assistant'; parts: (string | [number, number])[] };

export const toMessages = (turns: Turn[]): ChatMessage[] =>
  turns.map((t) => ({
    role: t.role,
    content: t.parts.map((p) => (typeof p === 'string' ? { type: 'text' as const, text: p } : image(p[0], p[1]))),
  }));

type Processor = Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;
type Model = Awaited<ReturnType<typeof AutoModelForImageTextToText.from_pretrained>>;

export interface Reference {
  text: string;
  ids: number[];
  promptTokens: number;
  /** [frames, rows, columns] of patches, per image. */
  grids: number[][];
  /** The prompt's length with each image still one token. */
  textOnlyTokens: number;
}

/** transformers.js on its own, greedy: the reference answer for `turns`. */
export function directReference(processor: Processor, model: Model) {
  const imageToken = (processor.constructor as unknown as { image_token: string }).image_token;
  const merge = (processor.image_processor as unknown as { config: { merge_size: number } }).config.merge_size ** 2;

  /**
   * Several images as the Python processor takes them: each through the image processor on its
   * own, each image token widened to its own count. (transformers.js's processor takes a list of
   * images as the frames of one video; glimpse does this instead: src/engines/embedded/vl-inputs.ts.)
   */
  async function separately(prompt: string, images: RawImage[]) {
    const ip = processor.image_processor as unknown as (
      i: unknown,
    ) => Promise<{ pixel_values: Tensor; image_grid_thw: Tensor }>;
    const parts = [];
    for (const img of images) parts.push(await ip(img));
    let text = prompt;
    for (const p of parts) {
      const [t, h, w] = (p.image_grid_thw.tolist() as bigint[][])[0].map(Number);
      text = text.replace(imageToken, '<|placeholder|>'.repeat((t * h * w) / merge));
    }
    text = text.replaceAll('<|placeholder|>', imageToken);
    return {
      ...(processor.tokenizer!(text) as object),
      pixel_values: cat(parts.map((p) => p.pixel_values)),
      image_grid_thw: cat(parts.map((p) => p.image_grid_thw)),
    };
  }

  return async function direct(turns: Turn[], maxNewTokens: number): Promise<Reference> {
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
    // No images: the tokenizer alone (the processor would hand an empty list to the image processor).
    const inputs = (
      images.length > 1
        ? await separately(prompt, images)
        : images.length
          ? await processor(prompt, images)
          : processor.tokenizer!(prompt)
    ) as Record<string, Tensor>;
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
  };
}

type Direct = ReturnType<typeof directReference>;

/**
 * `turns` through glimpse's engine and through transformers.js at once: the same text, usage that
 * counts exactly the reference's prompt and answer, and a normal end. Returns the reference.
 */
export async function assertSameAsDirect(
  engine: EmbeddedEngine,
  direct: Direct,
  turns: Turn[],
  maxTokens: number,
): Promise<Reference> {
  const [got, ref] = await Promise.all([
    collect(engine.generate(request(toMessages(turns), { maxTokens }), new AbortController().signal)),
    direct(turns, maxTokens),
  ]);
  assert.ok(ref.ids.length > 0, 'the reference answered nothing');
  assert.equal(got.text, ref.text);
  assert.deepEqual(got.usage, { promptTokens: ref.promptTokens, completionTokens: ref.ids.length });
  assert.equal(got.terminal.type, 'done');
  return ref;
}

/**
 * A request with an image of `size`, cancelled as it reaches the worker, stops within one step;
 * the worker then serves the next request in full.
 */
export async function assertCancelWithinOneStep(engine: EmbeddedEngine, size: [number, number], text: string) {
  const events = await startThenCancel(
    engine,
    request(toMessages([{ role: 'user', parts: [size, text] }]), { maxTokens: 500 }),
  );
  assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'cancelled' });
  const usage = events.find((e) => e.type === 'usage');
  // The flag is read before decoding and after every step: at most the step already under way.
  assert.ok(!usage || (usage.type === 'usage' && usage.usage.completionTokens <= 1), JSON.stringify(usage));
  const next = await collect(
    engine.generate(
      request(toMessages([{ role: 'user', parts: [size, text] }]), { maxTokens: 3 }),
      new AbortController().signal,
    ),
  );
  assert.equal(next.usage?.completionTokens, 3);
}
