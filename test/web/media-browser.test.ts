// The page sends a PDF the way it sends an image: picked with the file input, shown as a chip with
// its kind, posted as an OpenAI `file` part, and answered, in a real browser (Debian's Chromium)
// against a real glimpse on the simulated engine, which renders the PDF's pages itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { makePdf } from '../helpers/documents.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('attaching a PDF in the page', { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}` }, () => {
  let glimpse: RunningGlimpse;
  let browser: Browser;

  before(async () => {
    if (!existsSync(join(ROOT, 'web', 'dist', 'index.html')))
      assert.equal(
        spawnSync('npm', ['run', 'build:web'], { cwd: ROOT, stdio: 'inherit' }).status,
        0,
        'the page builds',
      );
    glimpse = await startGlimpse({
      engine: 'simulated',
      simulated: { ttftMs: 1, tokensPerSecond: 2000, answerTokens: 12 },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
  });
  after(async () => {
    await browser?.close();
    await glimpse?.close();
  });

  test('a picked PDF shows as a PDF chip, goes out as a file part and is answered', async () => {
    const ctx = await browser.newContext({ locale: 'en-US' });
    ctx.setDefaultTimeout(15_000);
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(glimpse.url + '/');
    await page.waitForSelector('[data-testid="model-select"] option', { state: 'attached' });

    await page.getByTestId('file-input').setInputFiles({
      name: 'report.pdf',
      mimeType: 'application/pdf',
      buffer: makePdf({ pages: 2, text: 'Quarterly' }),
    });
    const chip = page.getByTestId('attachment').getByTestId('media-chip');
    assert.equal(await chip.getAttribute('data-kind'), 'document');
    assert.match(await page.getByTestId('attachment').innerText(), /report\.pdf[\s\S]*PDF, sent whole/);

    await page.getByTestId('prompt').fill('Summarize this document');
    const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/v1/chat/completions'));
    await page.getByTestId('send').click();
    const req = await posted;
    await page.waitForSelector('[data-testid="assistant-message"]:last-child[data-status="done"]');
    assert.ok((await page.getByTestId('answer').last().innerText()).trim().length > 0, 'the answer has text');
    assert.equal(
      await page.getByTestId('user-message').last().getByTestId('media-chip').getAttribute('data-kind'),
      'document',
    );

    assert.equal((await req.response())?.status(), 200);
    const body = JSON.parse(req.postData() ?? '{}') as { messages: Array<{ role: string; content: unknown }> };
    const parts = body.messages.find((m) => m.role === 'user')?.content as Array<{
      type: string;
      file?: { file_data: string; filename: string };
    }>;
    const file = parts.find((p) => p.type === 'file');
    assert.equal(file?.file?.filename, 'report.pdf');
    assert.match(file?.file?.file_data ?? '', /^data:application\/pdf;base64,JVBERi/);
    assert.deepEqual(errors, []);
    await ctx.close();
  });
});
