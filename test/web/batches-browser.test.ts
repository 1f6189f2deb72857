/**
 * The page's Batches panel in Chromium against a real glimpse (simulated engine, embedded store):
 * upload a JSONL, watch the batch complete, download its results; a file that is not JSONL shows
 * the server's refusal with its code. The page's batch client is also checked from Node.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { CHROMIUM, haveChromium, launchChromium } from '../helpers/browser.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { batchProgress, BatchError, fileContent, listBatches, startBatch } from '../../web/src/batch-client.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const jsonl = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      custom_id: `r${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] },
    }),
  ).join('\n') + '\n';

describe('the Batches panel', () => {
  let glimpse: RunningGlimpse;
  before(async () => {
    glimpse = await startGlimpse({
      engine: 'simulated',
      simulated: { ttftMs: 1, tokensPerSecond: 200 },
      cache: { enabled: false },
    });
  });
  after(() => glimpse.close());

  test("the page's batch client starts a batch, lists it, reads its output, and surfaces a refusal's code", async () => {
    const started = await startBatch(glimpse.url, new Blob([jsonl(2)]), 'two.jsonl');
    assert.equal(started.request_counts.total, 2);
    let b = started;
    // Bounded by time, not by a count of polls: on a loaded machine each poll takes longer.
    for (const end = Date.now() + 30_000; b.status !== 'completed' && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 25));
      b = (await listBatches(glimpse.url)).find((x) => x.id === started.id)!;
    }
    assert.equal(b.status, 'completed');
    assert.deepEqual(batchProgress(b), { done: 2, total: 2, fraction: 1 });
    assert.equal((await (await fileContent(glimpse.url, b.output_file_id!)).text()).trim().split('\n').length, 2);
    await assert.rejects(
      startBatch(glimpse.url, new Blob(['not json\n']), 'bad.jsonl'),
      (e: unknown) => e instanceof BatchError && e.code === 'invalid_file' && /Line 1/.test(e.message),
    );
  });

  test(
    'in Chromium: upload, progress to completed, download; a bad file shows its code',
    { skip: haveChromium ? false : `no Chromium at ${CHROMIUM}` },
    async () => {
      if (!existsSync(join(ROOT, 'web', 'dist', 'index.html')))
        assert.equal(
          spawnSync('npm', ['run', 'build:web'], { cwd: ROOT, stdio: 'inherit' }).status,
          0,
          'the page builds',
        );
      const browser: Browser = await launchChromium();
      try {
        const ctx = await browser.newContext({ acceptDownloads: true });
        ctx.setDefaultTimeout(10_000);
        const page = await ctx.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        await page.goto(glimpse.url + '/');
        await page.getByTestId('batches-toggle').click();
        await page
          .getByTestId('batch-file')
          .setInputFiles({ name: 'three.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(jsonl(3)) });
        // The panel polls every 2 s while a batch runs: the batch's own run on a loaded machine plus a
        // poll can pass the 10 s default, so completion gets longer (still a failure if it never comes).
        await page.waitForSelector('[data-testid="batch-row"][data-status="completed"]', { timeout: 30_000 });
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.getByTestId('batch-download').first().click(),
        ]);
        assert.match(download.suggestedFilename(), /^batch_.*_output\.jsonl$/);
        await page
          .getByTestId('batch-file')
          .setInputFiles({ name: 'bad.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from('hello\n') });
        await page.waitForSelector('[data-testid="batch-error"]');
        assert.match(await page.getByTestId('batch-error').innerText(), /Line 1.*\(invalid_file\)/);
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    },
  );
});
