// The page sends a PDF or a video the way it sends an image: picked with the file input or dropped,
// shown as a chip with its kind, posted as an OpenAI `file` or `video_url` part, and answered, in a
// real browser (Debian's Chromium) against a real glimpse on the simulated engine, which renders the
// PDF's pages and samples the video's frames itself; what the budget made of them (the server's
// glimpse_media) then shows under the attachment as a caption and a strip of thumbnails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Browser, Page, Request } from 'playwright-core';
import { CHROMIUM, haveChromium, launchChromium } from '../helpers/browser.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { makePdf } from '../helpers/documents.js';
import { makeMp4 } from '../helpers/video.js';
import type { MediaOut } from '../../src/protocols/media.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const ARTIFACTS = join(ROOT, 'test-artifacts', 'web');

/** The glimpse_media entries of a streamed answer the page asked for (the role chunk carries them). */
async function mediaOfAnswer(req: Request): Promise<MediaOut[]> {
  const text = (await (await req.response())?.text()) ?? '';
  const first = text.split('\n').find((l) => l.startsWith('data: {"') && l.includes('glimpse_media'));
  return first ? (JSON.parse(first.slice(6)) as { glimpse_media: MediaOut[] }).glimpse_media : [];
}

/** Content chunks of a streamed answer. */
async function contentChunks(req: Request): Promise<number> {
  const text = (await (await req.response())?.text()) ?? '';
  return text.split('\n').filter((l) => /^data: \{.*"delta":\{"content":"[^"]/.test(l)).length;
}

async function askAndWait(page: Page, prompt: string): Promise<Request> {
  await page.getByTestId('prompt').fill(prompt);
  const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/v1/chat/completions'));
  await page.getByTestId('send').click();
  return posted;
}

describe('attaching a PDF in the page', { skip: haveChromium ? false : `no Chromium at ${CHROMIUM}` }, () => {
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
      // Slow enough that the page shows the answer while it streams (12 tokens over about 0.4 s).
      simulated: { ttftMs: 1, tokensPerSecond: 30, answerTokens: 12 },
    });
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await glimpse?.close();
  });

  /** The page, loaded and ready, in a fresh context; `errors` collects what the page throws. */
  async function openPage() {
    const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1100, height: 800 } });
    ctx.setDefaultTimeout(15_000);
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(glimpse.url + '/');
    await page.waitForSelector('[data-testid="model-select"] option', { state: 'attached' });
    return { ctx, page, errors };
  }

  test('a picked PDF shows as a PDF chip, goes out as a file part and is answered', async () => {
    const { ctx, page, errors } = await openPage();

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

  test("a PDF's pages show as a strip under it, with the count and the size the server rendered them at", async () => {
    const { ctx, page, errors } = await openPage();
    await page.getByTestId('file-input').setInputFiles({
      name: 'slides.pdf',
      mimeType: 'application/pdf',
      buffer: makePdf({ pages: 3, text: 'Slide' }),
    });
    const req = await askAndWait(page, 'What is on these slides?');
    await page.waitForSelector('[data-testid="assistant-message"]:last-child[data-status="done"]');
    assert.equal((JSON.parse(req.postData() ?? '{}') as { glimpse_thumbnails?: boolean }).glimpse_thumbnails, true);

    // The numbers on the page are the server's, for this request.
    const [doc] = await mediaOfAnswer(req);
    assert.equal(doc?.pages, 3);
    const strip = page.getByTestId('user-message').last().getByTestId('media-strip');
    assert.equal(await strip.getAttribute('data-kind'), 'document');
    assert.equal(
      await strip.getByTestId('media-summary').innerText(),
      `slides.pdf · 3 pages, shown at ${doc.width}×${doc.height} px`,
    );
    const thumbs = strip.getByTestId('media-thumb');
    assert.equal(await thumbs.count(), 3);
    // Each thumbnail is a decoded picture of its page, shaped like the page.
    const sizes = await thumbs.evaluateAll((imgs) =>
      (imgs as HTMLImageElement[]).map((i) => [i.naturalWidth, i.naturalHeight, i.complete] as const),
    );
    for (const [w, h, complete] of sizes) {
      assert.ok(complete && w > 0 && h > w, `${w}x${h}`);
    }
    assert.equal(await thumbs.nth(2).getAttribute('alt'), 'Page 3');
    await page.screenshot({ path: join(ARTIFACTS, 'pdf-strip.png') });
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  test('a dropped video is sent as video_url, the answer streams in, and its frames show as a strip', async () => {
    const { ctx, page, errors } = await openPage();
    // Dropped onto the page, as a user drags it from their files (an .mp4 made by ffmpeg, 2 s).
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const drop = new DataTransfer();
      drop.items.add(new File([bytes], 'clip.mp4', { type: 'video/mp4' }));
      window.dispatchEvent(new DragEvent('drop', { dataTransfer: drop, bubbles: true, cancelable: true }));
    }, makeMp4(2, '320x180').toString('base64'));
    const chip = page.getByTestId('attachment').getByTestId('media-chip');
    assert.equal(await chip.getAttribute('data-kind'), 'video');

    const req = await askAndWait(page, 'What happens in this clip?');
    // The answer is seen while it streams, then done.
    // (Polled on every animation frame: the page paints the stream once per frame.)
    await page.waitForFunction(
      () => {
        const all = document.querySelectorAll('[data-testid="assistant-message"]');
        const last = all[all.length - 1];
        return (
          last?.getAttribute('data-status') === 'streaming' &&
          !!last.querySelector('[data-testid="answer"]')?.textContent
        );
      },
      undefined,
      { polling: 'raf' },
    );
    await page.waitForSelector('[data-testid="assistant-message"]:last-child[data-status="done"]');
    const answer = (await page.getByTestId('answer').last().innerText()).trim();
    assert.ok(answer.length > 0, 'the answer has text');
    assert.equal((await req.response())?.status(), 200);
    assert.ok((await contentChunks(req)) > 1, 'the answer came in pieces');
    const body = JSON.parse(req.postData() ?? '{}') as {
      stream: boolean;
      messages: Array<{ role: string; content: Array<{ type: string; video_url?: { url: string } }> }>;
    };
    assert.equal(body.stream, true);
    const part = body.messages.find((m) => m.role === 'user')?.content.find((p) => p.type === 'video_url');
    assert.match(part?.video_url?.url ?? '', /^data:video\/mp4;base64,/);

    const [video] = await mediaOfAnswer(req);
    // 2 s at GLM-4.6V's 3 frames a second.
    assert.deepEqual([video?.type, video?.frames, video?.fps], ['video', 6, 3]);
    const strip = page.getByTestId('user-message').last().getByTestId('media-strip');
    assert.equal(
      await strip.getByTestId('media-summary').innerText(),
      `clip.mp4 · 6 frames at 3 fps, shown at ${video.width}×${video.height} px`,
    );
    assert.equal(await strip.getByTestId('media-thumb').count(), 6);
    await page.screenshot({ path: join(ARTIFACTS, 'video-strip.png') });
    assert.deepEqual(errors, []);
    await ctx.close();
  });
});
