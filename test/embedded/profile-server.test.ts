/**
 * `--model <profile>` end to end: the short flag (and GLIMPSE_MODEL, `model:` in a file) names the
 * same setting as --model-path, and a server started with `--model glm-ocr` loads the profile's hub
 * id (here from a cache holding the GLM-OCR-architecture fixture, offline) and shows the profile on
 * /v1/models and /v1/models/{id}.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import sharp from 'sharp';
import { profileFor } from '../../src/engines/embedded/profiles.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { glmProfileCache } from './helpers.js';

test('--model, GLIMPSE_MODEL and model: in a file set modelPath, each layer beating the one below', () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-model-flag-'));
  try {
    const file = join(dir, 'glimpse.yaml');
    writeFileSync(file, 'model: smolvlm\n');
    assert.equal(loadConfig({ flags: { model: 'glm-ocr' }, env: {} }).modelPath, 'glm-ocr');
    assert.equal(loadConfig({ env: { GLIMPSE_MODEL: 'glm-ocr' } }).modelPath, 'glm-ocr');
    assert.equal(loadConfig({ file, env: {} }).modelPath, 'smolvlm');
    // env over file, flag over env, whichever of the two names each layer uses
    assert.equal(loadConfig({ file, env: { GLIMPSE_MODEL_PATH: 'qwen2.5-vl-3b' } }).modelPath, 'qwen2.5-vl-3b');
    assert.equal(
      loadConfig({ file, env: { GLIMPSE_MODEL_PATH: 'qwen2.5-vl-3b' }, flags: { model: 'glm-ocr' } }).modelPath,
      'glm-ocr',
    );
    assert.equal(
      loadConfig({ env: { GLIMPSE_MODEL: 'glm-ocr' }, flags: { modelPath: '/models/x' } }).modelPath,
      '/models/x',
    );
    // the same value twice in one layer is fine; two different ones are a mistake to name
    assert.equal(loadConfig({ flags: { model: 'glm-ocr', modelPath: 'glm-ocr' }, env: {} }).modelPath, 'glm-ocr');
    assert.throws(
      () => loadConfig({ flags: { model: 'glm-ocr', modelPath: 'smolvlm' }, env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /--model \/ --model-path/);
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

let glimpse: RunningGlimpse;
let cacheDir: string;
const glm = profileFor('glm-ocr')!;

before(async () => {
  cacheDir = glmProfileCache();
  glimpse = await startGlimpse({
    engine: 'embedded',
    model: 'glm-ocr',
    cacheDir,
    offline: true,
    dtype: 'fp32',
    warmup: false,
  });
});

after(async () => {
  await glimpse?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

test('a server started with --model glm-ocr loads the profile and /v1/models shows its name, description and tasks', async () => {
  const health = (await (await fetch(`${glimpse.url}/health`)).json()) as { status: string; reason?: string };
  assert.equal(health.status, 'healthy', health.reason);

  const list = (await (await fetch(`${glimpse.url}/v1/models`)).json()) as {
    data: {
      id: string;
      description?: string;
      profile?: {
        name: string;
        description: string;
        tasks: { label: string; prompt: string }[];
        thinks: boolean;
        boxes: boolean;
      };
    }[];
  };
  assert.equal(list.data.length, 1);
  const card = list.data[0]!;
  assert.equal(card.id, 'glm-ocr');
  assert.equal(card.description, glm.description);
  assert.equal(card.profile?.name, 'glm-ocr');
  assert.deepEqual(
    card.profile?.tasks.map((t) => t.prompt),
    ['Text Recognition:', 'Table Recognition:', 'Formula Recognition:'],
  );
  assert.equal(card.profile?.thinks, false);

  const one = (await (await fetch(`${glimpse.url}/v1/models/glm-ocr`)).json()) as {
    id: string;
    profile?: { name: string };
  };
  assert.equal(one.id, 'glm-ocr');
  assert.equal(one.profile?.name, 'glm-ocr');
});

test("with --model glm-ocr an image reaches the model in the profile's 28 px grid: a 3000x2000 photo costs what a 1008x672 one does", async () => {
  const ask = async (width: number, height: number) => {
    const image = await sharp({ create: { width, height, channels: 3, background: { r: 200, g: 120, b: 40 } } })
      .png()
      .toBuffer();
    const res = await fetch(`${glimpse.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'glm-ocr',
        max_tokens: 1,
        temperature: 0,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: `data:image/png;base64,${image.toString('base64')}` } },
              { type: 'text', text: 'Text Recognition:' },
            ],
          },
        ],
      }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
  };
  // Inside the 1024 px bound 3000x2000 is 1024x683; GLM-V's processor would round that to 37x24
  // cells of 28 px itself. Sent as 1008x672 (36x24) instead, no pixel goes in that the model drops.
  const onGrid = await ask(1008, 672);
  assert.equal(await ask(3000, 2000), onGrid);
  // and it is the grid that decides: one cell row more is 36 more image tokens
  assert.equal(await ask(1008, 700), onGrid + 36);
});
