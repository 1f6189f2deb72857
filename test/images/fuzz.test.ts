import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageSettings, resolveImage } from '../../src/images/index.js';
import { isGlimpseError } from '../../src/core/index.js';
import { mutate, prng, seedImages } from './fuzz-corpus.js';

const CASES = Number(process.env.FUZZ_CASES ?? 2000);
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
      const source =
        i % 3 === 0 ? { kind: 'base64' as const, data: data.toString('base64') } : { kind: 'bytes' as const, data };
      try {
        const img = await resolveImage(source, settings);
        assert.ok(
          img.width > 0 && img.height > 0 && Math.max(img.width, img.height) <= 256,
          `case ${i} (${kind}) gave ${img.width}x${img.height}`,
        );
        outcomes['ok'] = (outcomes['ok'] ?? 0) + 1;
      } catch (err) {
        if (!isGlimpseError(err))
          throw new Error(`case ${i} (${kind}, seed ${SEED}) threw a non-GlimpseError: ${String(err)}`, { cause: err });
        assert.ok(
          err.status >= 400 && err.status < 500,
          `case ${i} (${kind}) gave status ${err.status}: ${err.message}`,
        );
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

test(`mutated images through the public API (/v1/chat/completions data URLs and /infer multipart) get 200 or 4xx, never 5xx, and the server stays up`, async () => {
  const { loadConfig } = await import('../../src/config/index.js');
  const { createServer } = await import('../../src/server/index.js');
  const { createLogger } = await import('../../src/observability/index.js');
  // Peak memory is about maxPixels x a few bytes x maxConcurrentDecodes; a smaller pixel limit
  // keeps the RSS bound meaningful on a shared machine while every code path stays the same.
  const config = loadConfig({
    flags: {
      engine: 'simulated',
      logLevel: 'silent',
      simulated: { ttftMs: 0, tokensPerSecond: 100000, answerTokens: 2 },
      images: { maxPixels: 4_000_000 },
    },
    env: {},
  });
  const server = await createServer(config, { logger: createLogger({ level: 'silent', format: 'json' }) });
  await server.engineStarted;
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const HTTP_CASES = Math.max(200, Math.floor((CASES * 3) / 4));
  try {
    const seeds = await seedImages();
    const rand = prng(SEED + 1);
    const statuses: Record<number, number> = {};
    const codes: Record<string, number> = {};
    const send = async (i: number, data: Buffer): Promise<Response> => {
      if (i % 4 === 3) {
        const form = new FormData();
        form.append('image', new Blob([data]), 'fuzz.bin');
        form.append('prompt', 'What is this?');
        return fetch(url + '/infer', { method: 'POST', body: form });
      }
      // a lying or odd data URL header now and then: the bytes must decide
      const header = [
        'data:image/png;base64,',
        'data:image/jpeg;base64,',
        'data:;base64,',
        'data:application/octet-stream;base64,',
      ][i % 4]!;
      const body = {
        temperature: 0.7,
        max_tokens: 2,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: header + data.toString('base64') } },
              { type: 'text', text: 'What is this?' },
            ],
          },
        ],
      };
      return fetch(url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    };
    // warm up, then measure
    for (const s of seeds) await (await send(0, s)).text();
    const rssStart = process.memoryUsage().rss;
    let rssPeak = rssStart;
    let next = 0;
    const worker = async () => {
      while (next < HTTP_CASES) {
        const i = next++;
        const { kind, data } = mutate(seeds, rand);
        const res = await send(i, data);
        const text = await res.text();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        assert.ok(
          res.status === 200 || (res.status >= 400 && res.status < 500),
          `case ${i} (${kind}) answered ${res.status}: ${text.slice(0, 200)}`,
        );
        if (res.status !== 200) {
          const body = JSON.parse(text) as { error?: { code?: string }; error_code?: string };
          const code = body.error?.code ?? body.error_code;
          assert.ok(code, `case ${i} error body names a code: ${text.slice(0, 200)}`);
          codes[code!] = (codes[code!] ?? 0) + 1;
        }
        if (i % 100 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    const health = await fetch(url + '/health');
    assert.equal(health.status, 200, 'the server is still alive');
    await health.text();
    const growthMb = (Math.max(rssPeak, process.memoryUsage().rss) - rssStart) / 1024 / 1024;
    console.log(
      `http fuzz (seed ${SEED + 1}, ${HTTP_CASES} cases):`,
      statuses,
      codes,
      `rss growth ${growthMb.toFixed(1)} MB`,
    );
    assert.ok(growthMb < 256, `RSS grew ${growthMb.toFixed(1)} MB`);
    assert.ok((statuses[200] ?? 0) > 0 && (statuses[422] ?? 0) > 0, 'both paths exercised');
  } finally {
    await server.close();
  }
});
