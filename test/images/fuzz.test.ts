import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageSettings, resolveImage } from '../../src/images/index.js';
import { isGlimpseError } from '../../src/core/index.js';
import { mutate, prng, seedImages } from './fuzz-corpus.js';

const CASES = Number(process.env.FUZZ_CASES ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261122);

test(`${CASES} mutated, truncated and random images through resolveImage give a normalized image or a 4xx GlimpseError, with bounded memory`, async () => {
  const seeds = await seedImages();
  const rand = prng(SEED);
  const settings = { images: { ...imageSettings(), maxEdge: 256, maxPixels: 4_000_000 } };
  const outcomes: Record<string, number> = {};
  // warm up before measuring memory so lazily loaded codecs do not count as growth
  for (const s of seeds) await resolveImage({ kind: 'bytes', data: s }, settings);
  const rssStart = process.memoryUsage().rss;
  let rssPeak = rssStart;

  const CONCURRENCY = 4;
  let next = 0;
  const worker = async () => {
    while (next < CASES) {
      const i = next++;
      const { kind, data } = mutate(seeds, rand);
      const source = i % 3 === 0 ? { kind: 'base64' as const, data: data.toString('base64') } : { kind: 'bytes' as const, data };
      try {
        const img = await resolveImage(source, settings);
        assert.ok(img.width > 0 && img.height > 0 && Math.max(img.width, img.height) <= 256, `case ${i} (${kind}) gave ${img.width}x${img.height}`);
        outcomes['ok'] = (outcomes['ok'] ?? 0) + 1;
      } catch (err) {
        if (!isGlimpseError(err)) throw new Error(`case ${i} (${kind}, seed ${SEED}) threw a non-GlimpseError: ${String(err)}`);
        assert.ok(err.status >= 400 && err.status < 500, `case ${i} (${kind}) gave status ${err.status}: ${err.message}`);
        outcomes[err.code] = (outcomes[err.code] ?? 0) + 1;
      }
      if (i % 100 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);

  const growthMb = (rssPeak - rssStart) / 1024 / 1024;
  console.log(`fuzz outcomes (seed ${SEED}):`, outcomes, `rss growth ${growthMb.toFixed(1)} MB`);
  assert.ok(growthMb < 256, `RSS grew ${growthMb.toFixed(1)} MB over ${CASES} cases`);
  assert.ok((outcomes['ok'] ?? 0) > 0 && (outcomes['invalid_image'] ?? 0) > 0, 'the corpus exercised both paths');
});
