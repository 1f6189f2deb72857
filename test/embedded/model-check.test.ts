/**
 * Model profiles (short names for hub ids, with what each is good at) and a model directory that
 * cannot work: each refused with one sentence in /health's reason, the engine up and answering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedEngine, ModelUnavailableError, resolveModel } from '../../src/engines/embedded/index.js';
import { fixtureConfig, GLM_FIXTURE, quietLogger } from './helpers.js';

test('a profile name loads its hub id, and the model card says what the model is good at and offers its tasks', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'glimpse-profile-'));
  try {
    await assert.rejects(
      resolveModel({
        modelPath: 'glm-ocr',
        cacheDir: cache,
        offline: true,
        hubUrl: 'http://127.0.0.1:9',
        revision: 'main',
        dtype: 'auto',
      }),
      (err: Error) =>
        err instanceof ModelUnavailableError &&
        err.message.includes('Model onnx-community/GLM-OCR-ONNX is not in the cache'),
    );
    await assert.rejects(
      resolveModel({
        modelPath: 'no such thing!',
        cacheDir: cache,
        offline: true,
        hubUrl: 'http://127.0.0.1:9',
        revision: 'main',
        dtype: 'auto',
      }),
      /nor a profile \(glm-ocr, smolvlm, qwen2\.5-vl-3b\)/,
    );
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  const card = createEmbeddedEngine(fixtureConfig({ modelPath: 'glm-ocr' }), quietLogger).info().models[0];
  assert.equal(card.id, 'glm-ocr');
  assert.equal(card.profile?.name, 'glm-ocr');
  assert.match(card.profile.description, /Chinese/);
  assert.deepEqual(
    card.profile.tasks.map((t) => t.prompt),
    ['Text Recognition:', 'Table Recognition:', 'Formula Recognition:'],
  );
  assert.equal(createEmbeddedEngine(fixtureConfig(), quietLogger).info().models[0].profile, undefined);
});

const BROKEN: { what: string; spoil: (dir: string) => void; reason: RegExp }[] = [
  {
    what: 'a missing session file',
    spoil: (d) => unlinkSync(join(d, 'onnx', 'vision_encoder.onnx')),
    reason: /onnx\/vision_encoder\.onnx is missing \(dtype fp32\)/,
  },
  {
    what: 'an architecture transformers.js cannot run',
    spoil: (d) =>
      edit(d, 'config.json', (c) => ({ ...c, architectures: ['MambaVisionForCausalLM'], model_type: 'mamba_vision' })),
    reason:
      /describes MambaVisionForCausalLM \(model_type mamba_vision\), which transformers\.js cannot run as an image-text-to-text model; supported model types: .*glm_ocr/,
  },
  {
    what: 'a processor config that disagrees with the model',
    spoil: (d) => edit(d, 'preprocessor_config.json', (c) => ({ ...c, merge_size: 4 })),
    reason: /preprocessor_config\.json says merge_size 4 but config\.json's vision_config\.spatial_merge_size is 2/,
  },
];

function edit(dir: string, name: string, change: (json: Record<string, unknown>) => Record<string, unknown>): void {
  writeFileSync(
    join(dir, name),
    JSON.stringify(change(JSON.parse(readFileSync(join(dir, name), 'utf8')) as Record<string, unknown>)),
  );
}

for (const { what, spoil, reason } of BROKEN) {
  test(`a model directory with ${what}: one sentence in health, the engine up and answering`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glimpse-broken-'));
    cpSync(GLM_FIXTURE, dir, { recursive: true });
    spoil(dir);
    const engine = createEmbeddedEngine(fixtureConfig({ modelPath: dir, warmup: false }), quietLogger);
    try {
      await engine.start();
      const health = engine.health();
      assert.equal(health.status, 'unhealthy');
      assert.match(health.reason ?? '', reason);
      assert.match(health.reason ?? '', new RegExp(`^The model in ${dir} could not be loaded: `));
      assert.equal(health.reason!.split('\n').length, 1);
      const events = [];
      for await (const ev of engine.generate(
        {
          id: 'x',
          model: 'm',
          messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
          sampling: { maxTokens: 2, temperature: 0, topP: 1, stop: [] },
        },
        new AbortController().signal,
      ))
        events.push(ev);
      assert.equal(events.length, 1);
      assert.ok(
        events[0].type === 'error' &&
          events[0].error.code === 'engine_unavailable' &&
          reason.test(events[0].error.message),
      );
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
