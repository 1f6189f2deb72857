// The model profile's one-click tasks in a real browser (Debian's Chromium through playwright-core)
// against a real glimpse started with --model glm-ocr: the embedded engine runs the random-weight
// GLM-OCR-architecture fixture from a model cache, so the answer is noise but every step is real.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, haveChromium, launchChromium } from '../helpers/browser.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { glmProfileCache } from '../embedded/helpers.js';
import { profileFor } from '../../src/engines/embedded/profiles.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const ARTIFACTS = join(ROOT, 'test-artifacts', 'web');
const glm = profileFor('glm-ocr')!;

describe(
  'one-click tasks of a model profile, in Chromium',
  { skip: haveChromium ? false : `no Chromium at ${CHROMIUM}` },
  () => {
    let cacheDir: string;
    let glimpse: RunningGlimpse;
    let browser: Browser;
    let page: Page;
    const errors: string[] = [];

    before(async () => {
      if (!existsSync(join(ROOT, 'web', 'dist', 'index.html'))) {
        const r = spawnSync('npm', ['run', 'build:web'], { cwd: ROOT, stdio: 'inherit' });
        assert.equal(r.status, 0, 'the page builds');
      }
      mkdirSync(ARTIFACTS, { recursive: true });
      cacheDir = glmProfileCache();
      glimpse = await startGlimpse({
        engine: 'embedded',
        model: 'glm-ocr',
        cacheDir,
        offline: true,
        dtype: 'fp32',
        warmup: false,
      });
      browser = await launchChromium();
      const ctx = await browser.newContext({
        viewport: { width: 1100, height: 800 },
        locale: 'en-US',
        deviceScaleFactor: 1,
      });
      ctx.setDefaultTimeout(20_000);
      page = await ctx.newPage();
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(glimpse.url + '/');
      await page.waitForFunction(() =>
        [...document.querySelectorAll<HTMLOptionElement>('[data-testid="model-select"] option')].some(
          (o) => o.value === 'glm-ocr',
        ),
      );
    });
    after(async () => {
      await browser?.close();
      await glimpse?.close();
      if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
    });

    test('the model picker says what the profile is good at and the composer offers its task prompts', async () => {
      // (preact sets an option's value as a property, so it is found by it rather than by a selector)
      const title = await page.evaluate(
        () =>
          [...document.querySelectorAll<HTMLOptionElement>('[data-testid="model-select"] option')].find(
            (o) => o.value === 'glm-ocr',
          )?.title,
      );
      assert.equal(title, glm.description);
      // ...and says it in plain sight too, as a line under the picker that the picker points to.
      const about = page.getByTestId('model-description');
      assert.ok(await about.isVisible(), 'the description is shown, not only a tooltip');
      assert.equal(await about.textContent(), glm.description);
      assert.equal(
        await page.getByTestId('model-select').getAttribute('aria-describedby'),
        await about.getAttribute('id'),
      );
      const [picker, line] = await Promise.all([page.getByTestId('model-select').boundingBox(), about.boundingBox()]);
      assert.ok(picker && line && line.y >= picker.y + picker.height, 'the line sits under the picker');
      const tasks = page.getByTestId('task');
      assert.deepEqual(await tasks.allTextContents(), ['Text', 'Table', 'Formula']);
      assert.deepEqual(await tasks.evaluateAll((els) => els.map((e) => e.getAttribute('title'))), [
        'Text Recognition:',
        'Table Recognition:',
        'Formula Recognition:',
      ]);
    });

    test('a task with no image attached waits in the input and says an image is needed', async () => {
      await page.getByTestId('task').filter({ hasText: 'Table' }).click();
      assert.equal(await page.getByTestId('prompt').inputValue(), 'Table Recognition:');
      assert.match((await page.getByTestId('notices').textContent()) ?? '', /Attach the image/);
      assert.equal(await page.getByTestId('user-message').count(), 0, 'nothing was sent');
      await page.getByTestId('prompt').fill('');
    });

    test('with an image attached, one click asks the task prompt about it and the answer streams in', async () => {
      const png = await page.evaluate(async () => {
        const c = new OffscreenCanvas(120, 80);
        const ctx = c.getContext('2d')!;
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, 120, 80);
        ctx.fillStyle = '#000';
        ctx.fillRect(10, 30, 100, 6);
        const bytes = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
        return Array.from(bytes);
      });
      await page
        .getByTestId('file-input')
        .setInputFiles({ name: 'line.png', mimeType: 'image/png', buffer: Buffer.from(png) });
      const sent = page.waitForRequest((r) => r.url().endsWith('/v1/chat/completions') && r.method() === 'POST');
      await page.getByTestId('task').filter({ hasText: 'Text' }).click();
      const body = (await sent).postDataJSON() as { model: string; messages: { role: string; content: unknown }[] };
      assert.equal(body.model, 'glm-ocr');
      const last = body.messages[body.messages.length - 1]!;
      assert.equal(last.role, 'user');
      const parts = last.content as { type: string; text?: string; image_url?: { url: string } }[];
      assert.deepEqual(
        parts.filter((p) => p.type === 'text').map((p) => p.text),
        ['Text Recognition:'],
      );
      assert.equal(parts.filter((p) => p.type === 'image_url' && p.image_url?.url.startsWith('data:image/')).length, 1);

      await page.waitForSelector('[data-testid="assistant-message"]:last-child[data-status="done"]', {
        timeout: 60_000,
      });
      assert.match((await page.getByTestId('user-message').last().textContent()) ?? '', /Text Recognition:/);
      await page.screenshot({ path: join(ARTIFACTS, 'profile-tasks.png') });
      assert.deepEqual(errors, []);
    });
  },
);
