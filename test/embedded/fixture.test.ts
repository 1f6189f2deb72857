import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FIXTURE, GLM_FIXTURE } from './helpers.js';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
}

for (const [dir, args] of [
  [FIXTURE, []],
  [GLM_FIXTURE, ['--arch', 'glm-ocr']],
] as const) {
  test(`npm run make-tiny-vlm ${args.join(' ')} regenerates the committed fixture ${relative(process.cwd(), dir)} byte for byte`, () => {
    const out = mkdtempSync(join(tmpdir(), 'glimpse-tiny-'));
    try {
      execFileSync(
        process.execPath,
        ['--import', 'tsx', new URL('../../scripts/make-tiny-vlm.ts', import.meta.url).pathname, ...args, out],
        { stdio: 'pipe' },
      );
      const committed = files(dir)
        .map((f) => relative(dir, f))
        .sort();
      assert.deepEqual(
        files(out)
          .map((f) => relative(out, f))
          .sort(),
        committed,
      );
      for (const f of committed)
        assert.ok(
          readFileSync(join(out, f)).equals(readFileSync(join(dir, f))),
          `${f} differs: re-run npm run make-tiny-vlm ${args.join(' ')} and commit`,
        );
      const bytes = committed.reduce((a, f) => a + statSync(join(dir, f)).size, 0);
      assert.ok(bytes < 2 * 1024 * 1024, `fixture is ${bytes} bytes`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
}

test("an 8-bit export (the layout of SmolVLM's default *_quantized.onnx files) loads with --dtype auto and answers as transformers.js does", async () => {
  const out = mkdtempSync(join(tmpdir(), 'glimpse-tiny-q8-'));
  const { AutoModelForImageTextToText, AutoProcessor, RawImage } = await import('@huggingface/transformers');
  const { createEmbeddedEngine, resolveModel } = await import('../../src/engines/embedded/index.js');
  const { askAbout, collect, fixtureConfig, quietLogger, request } = await import('./helpers.js');
  const engine = createEmbeddedEngine(fixtureConfig({ modelPath: out, warmup: false }), quietLogger);
  try {
    execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        new URL('../../scripts/make-tiny-vlm.ts', import.meta.url).pathname,
        '--shape',
        'tiny-q8',
        out,
      ],
      { stdio: 'pipe' },
    );
    assert.deepEqual(readdirSync(join(out, 'onnx')).sort(), [
      'decoder_model_merged_quantized.onnx',
      'embed_tokens_quantized.onnx',
      'vision_encoder_quantized.onnx',
    ]);
    const resolved = await resolveModel({
      modelPath: out,
      cacheDir: out,
      offline: true,
      hubUrl: 'http://127.0.0.1:9',
      revision: 'main',
      dtype: 'auto',
    });
    // The model's own transformers.js_config (dtype q8) decides, as for the published SmolVLM.
    assert.equal(resolved.dtype, null);
    await engine.start();
    assert.equal(engine.health().ready, true, engine.health().reason);
    const got = await collect(
      engine.generate(request(askAbout([200, 30, 30]), { maxTokens: 10 }), new AbortController().signal),
    );

    // transformers.js on its own, same files, same image (64x48 solid red), greedy.
    const processor = await AutoProcessor.from_pretrained(out);
    const model = await AutoModelForImageTextToText.from_pretrained(out, { dtype: 'q8' } as never);
    const px = new Uint8ClampedArray(64 * 48 * 3);
    for (let i = 0; i < px.length; i += 3) px.set([200, 30, 30], i);
    const prompt = processor.apply_chat_template(
      [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is in this picture?' }] }] as never,
      { add_generation_prompt: true },
    ) as string;
    const inputs = (await processor(prompt, [new RawImage(px, 64, 48, 3)])) as Record<string, { dims: number[] }>;
    const n = inputs.input_ids!.dims.at(-1)!;
    const ids = (
      (await model.generate({ ...inputs, max_new_tokens: 10, do_sample: false } as never)) as {
        slice: (...a: unknown[]) => { tolist: () => bigint[][] };
      }
    )
      .slice(null, [n, null])
      .tolist()[0]!
      .map(Number);
    await model.dispose();
    assert.equal(got.text, processor.tokenizer!.decode(ids, { skip_special_tokens: true }));
    assert.equal(got.usage?.completionTokens, ids.length);
  } finally {
    await engine.close();
    rmSync(out, { recursive: true, force: true });
  }
});
