// The web page in a real browser (Debian's Chromium driven by playwright-core) against a real
// glimpse whose upstream engine talks to an in-test vLLM double, so every answer is scripted.
// Screenshots of the main states go to test-artifacts/web/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM, haveChromium, launchChromium } from '../helpers/browser.js';
import { startFakeVllm, type FakeVllm, type RecordedRequest, type Script } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const ARTIFACTS = join(ROOT, 'test-artifacts', 'web');

/** What the double answers, chosen by a keyword in the last user message. */
function scenario(rec: RecordedRequest): Script {
  const msgs = (rec.body?.messages ?? []) as Array<{ role: string; content: unknown }>;
  const lastUser = [...msgs].reverse().find((m) => m.role === 'user');
  const text = JSON.stringify(lastUser?.content ?? '');
  const words = (n: number, w = 'word') => Array.from({ length: n }, (_, i) => `${w}${i + 1} `);
  if (text.includes('scenario-slow')) return { reasoning: [], content: words(400), delayMs: 60 };
  if (text.includes('scenario-cut'))
    return { reasoning: [], content: ['cut ', 'short'], delayMs: 5, finishReason: 'length' };
  if (text.includes('scenario-stall')) return { reasoning: [], content: ['late'], delayMs: 8000 };
  if (text.includes('scenario-think'))
    return {
      reasoning: ['Let me look', ' at the picture.', ' SECRET-THOUGHT'],
      content: ['It is ', 'a **test** ', 'pattern.'],
      delayMs: 40,
    };
  if (text.includes('scenario-boxes'))
    return {
      reasoning: [],
      content: [
        'The red block is at ',
        '<|begin_of_box|>[100,200,',
        '500,800]<|end_of_box|>',
        ' and the blue one at ',
        '<|begin_of_box|>[[600,100,900,400]]<|end_of_box|>',
        '.',
      ],
      delayMs: 20,
    };
  if (text.includes('scenario-xss'))
    return {
      reasoning: [],
      content: [
        'Here you go: <img src=x onerror="window.__pwned=1">\n\n',
        '[click me](javascript:window.__pwned=2) and <a href="javascript:window.__pwned=3">this</a>\n\n',
        '<script>window.__pwned=4</script><iframe src="javascript:window.__pwned=5"></iframe>\n\n',
        '![tracker](http://127.0.0.1:9/leak.png)\n\n',
        '<svg onload="window.__pwned=6"></svg><details open ontoggle="window.__pwned=7">x</details>\n\n',
        '```js\nconsole.log("copy me");\n```\n',
      ],
      delayMs: 10,
    };
  const sentence = [
    'I ',
    'see ',
    'a ',
    'generated ',
    'test ',
    'pattern ',
    'with ',
    'coloured ',
    'blocks',
    '. ',
    'It ',
    'has ',
    'no ',
    'people ',
    'in ',
    'it',
    '.',
  ];
  // Slow enough to watch it stream where a test does; quick everywhere else.
  return { reasoning: [], content: sentence, delayMs: text.includes('What is in this picture') ? 80 : 10 };
}

async function makeImage(page: Page, width: number, height: number, type = 'image/jpeg'): Promise<Buffer> {
  const b64 = await page.evaluate(
    async ({ width, height, type }) => {
      const c = new OffscreenCanvas(width, height);
      const ctx = c.getContext('2d')!;
      ctx.fillStyle = '#f4f1ea';
      ctx.fillRect(0, 0, width, height);
      ctx.fillStyle = '#d33';
      ctx.fillRect(width * 0.1, height * 0.2, width * 0.4, height * 0.6);
      ctx.fillStyle = '#36c';
      ctx.fillRect(width * 0.6, height * 0.1, width * 0.3, height * 0.3);
      const blob = await c.convertToBlob({ type, quality: 0.9 });
      const dataUrl: string = await new Promise((r) => {
        const fr = new FileReader();
        fr.onload = () => r(String(fr.result));
        fr.readAsDataURL(blob);
      });
      return dataUrl.slice(dataUrl.indexOf(',') + 1);
    },
    { width, height, type },
  );
  return Buffer.from(b64, 'base64');
}

describe('the web page in Chromium', { skip: haveChromium ? false : `no Chromium at ${CHROMIUM}` }, () => {
  let vllm: FakeVllm;
  let glimpse: RunningGlimpse;
  let browser: Browser;

  before(async () => {
    if (!existsSync(join(ROOT, 'web', 'dist', 'index.html'))) {
      const r = spawnSync('npm', ['run', 'build:web'], { cwd: ROOT, stdio: 'inherit' });
      assert.equal(r.status, 0, 'the page builds');
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    vllm = await startFakeVllm({ script: scenario });
    glimpse = await startGlimpse({ engine: 'upstream', upstream: vllm.url, upstreamModel: vllm.model });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await glimpse?.close();
    await vllm?.close();
  });

  async function open(
    opts: { colorScheme?: 'light' | 'dark'; locale?: string; width?: number; height?: number } = {},
  ): Promise<{ ctx: BrowserContext; page: Page; errors: string[] }> {
    const ctx = await browser.newContext({
      viewport: { width: opts.width ?? 1100, height: opts.height ?? 800 },
      colorScheme: opts.colorScheme ?? 'light',
      locale: opts.locale ?? 'en-US',
      deviceScaleFactor: 1,
    });
    ctx.setDefaultTimeout(10_000);
    // Record every Content-Security-Policy violation: the page must work under its own policy.
    await ctx.addInitScript(() => {
      const w = window as unknown as { __csp: string[] };
      w.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
      );
    });
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED/.test(m.text()))
        errors.push(m.text());
    });
    await page.goto(glimpse.url + '/');
    // The model list comes from /v1/models.
    await page.waitForFunction(
      (id) =>
        [...document.querySelectorAll<HTMLOptionElement>('[data-testid="model-select"] option')].some(
          (o) => o.value === id,
        ),
      vllm.model,
    );
    return { ctx, page, errors };
  }

  async function attach(page: Page, name: string, buffer: Buffer, mimeType: string) {
    await page.getByTestId('file-input').setInputFiles({ name, mimeType, buffer });
  }

  async function ask(page: Page, text: string) {
    await page.getByTestId('prompt').fill(text);
    await page.getByTestId('send').click();
  }

  const cspViolations = (page: Page) => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
  const lastAnswer = (page: Page) => page.getByTestId('assistant-message').last();
  const waitStatus = (page: Page, status: string, timeout = 10_000) =>
    page.waitForSelector(`[data-testid="assistant-message"]:last-child[data-status="${status}"]`, { timeout });

  test('the page is served at / with a strict CSP, a no-cache index and immutable hashed assets', async () => {
    const res = await fetch(glimpse.url + '/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    const html = await res.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, 'index.html references a hashed script');
    const js = await fetch(glimpse.url + asset, { headers: { 'accept-encoding': 'br' } });
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const size = Number(js.headers.get('content-length') ?? (await js.arrayBuffer()).byteLength);
    assert.ok(size < 300 * 1024, `script is ${size} bytes`);
    // API routes keep their own answers: the page does not swallow unknown paths.
    const missing = await fetch(glimpse.url + '/v1/nope');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
  });

  test('an uploaded image shows the size that will be sent, and the answer streams in token by token with timings', async () => {
    const { ctx, page, errors } = await open();
    await attach(page, 'photo.jpg', await makeImage(page, 2000, 1500), 'image/jpeg');
    await assert.doesNotReject(page.getByTestId('attachment-size').waitFor());
    assert.match(await page.getByTestId('attachment-size').innerText(), /1024×768/);
    await page.screenshot({ path: join(ARTIFACTS, 'attached.png') });
    const before = vllm.requests.length;
    await ask(page, 'What is in this picture?');
    // Sample the answer while it streams: it must grow in several steps, not arrive at once.
    const lengths = new Set<number>();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const state = await page.evaluate(() => {
        const m = [...document.querySelectorAll('[data-testid="assistant-message"]')].pop() as HTMLElement | undefined;
        return { status: m?.dataset.status, len: m?.querySelector('[data-testid="answer"]')?.textContent?.length ?? 0 };
      });
      if (state.len) lengths.add(state.len);
      if (state.status === 'done') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(lengths.size >= 4, `answer grew in ${lengths.size} steps`);
    await waitStatus(page, 'done');
    assert.equal(
      await lastAnswer(page).getByTestId('answer').innerText(),
      'I see a generated test pattern with coloured blocks. It has no people in it.',
    );
    assert.match(
      await lastAnswer(page).getByTestId('stats').innerText(),
      /first token .+ · .+ tokens\/s · total .+ · 17 tokens/,
    );
    // The upstream got the image, already resized by the page to the bound.
    const sent = vllm.requests.slice(before).find((r) => r.method === 'POST');
    const parts = sent?.body.messages.at(-1).content as Array<{ type: string; image_url?: { url: string } }>;
    const img = parts.find((p) => p.type === 'image_url');
    assert.match(img?.image_url?.url ?? '', /^data:image\/(jpeg|png|webp);base64,/);
    assert.equal(await page.getByTestId('attachment').count(), 0, 'the composer is empty after sending');
    await page.screenshot({ path: join(ARTIFACTS, 'answered-light.png') });
    assert.deepEqual(errors, []);
    assert.deepEqual(await cspViolations(page), []);
    await ctx.close();
  });

  test('a file that is not an image or is too big is refused before upload, with a clear message', async () => {
    const { ctx, page } = await open();
    const posts = () => vllm.requests.filter((r) => r.method === 'POST').length;
    const before = posts();
    await attach(page, 'notes.txt', Buffer.from('just text'), 'text/plain');
    await page.getByTestId('notices').getByText('notes.txt is not an image, a PDF or a video.').waitFor();
    // A 41 MB file is made inside the page and dropped (sending it through the test driver would be slow).
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(41 * 1024 * 1024)], 'huge.png', { type: 'image/png' }));
      window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page
      .getByTestId('notices')
      .getByText(/huge\.png is too big \(41\.0 MB; the limit is 40\.0 MB\)/)
      .waitFor();
    await attach(page, 'broken.png', Buffer.from('not really a png'), 'image/png');
    await page.getByTestId('notices').getByText('broken.png could not be read as an image.').waitFor();
    assert.equal(await page.getByTestId('attachment').count(), 0);
    // Several images per message, each removable before sending.
    await attach(page, 'a.png', await makeImage(page, 300, 200, 'image/png'), 'image/png');
    await attach(page, 'b.png', await makeImage(page, 200, 300, 'image/png'), 'image/png');
    await page.getByTestId('attachment').nth(1).waitFor();
    assert.equal(await page.getByTestId('attachment').count(), 2);
    assert.match(await page.getByTestId('attachment-size').first().innerText(), /300×200/);
    await page.screenshot({ path: join(ARTIFACTS, 'refused-files.png') });
    await page.getByRole('button', { name: 'Remove image: a.png' }).click();
    assert.equal(await page.getByTestId('attachment').count(), 1);
    assert.equal(posts(), before, 'nothing was uploaded');
    await ctx.close();
  });

  test('images can be pasted and dropped onto the page', async () => {
    const { ctx, page } = await open();
    const png = (await makeImage(page, 640, 480, 'image/png')).toString('base64');
    // No named helpers inside evaluate: the test transpiler would wrap them in a function the page lacks.
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const paste = new DataTransfer();
      paste.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: paste, bubbles: true }));
      const drop = new DataTransfer();
      drop.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      window.dispatchEvent(new DragEvent('drop', { dataTransfer: drop, bubbles: true, cancelable: true }));
    }, png);
    await page.getByTestId('attachment').nth(1).waitFor();
    const names = await page.locator('.attachment-name').allInnerTexts();
    assert.deepEqual(names.sort(), ['dropped.png', 'pasted.png']);
    await ctx.close();
  });

  test('Stop cancels the generation on the server: the upstream connection closes and nothing stays in flight', async () => {
    const { ctx, page } = await open();
    await ask(page, 'scenario-slow count for me');
    await page.waitForFunction(() =>
      (document.querySelector('[data-testid="answer"]')?.textContent ?? '').includes('word3'),
    );
    assert.ok(vllm.openConnections() >= 1, 'the generation is in flight upstream');
    await page.screenshot({ path: join(ARTIFACTS, 'streaming.png') });
    await page.getByTestId('stop').click();
    await waitStatus(page, 'stopped');
    const deadline = Date.now() + 5000;
    while (vllm.openConnections() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(vllm.openConnections(), 0, 'no generation left in flight upstream');
    const health = (await (await fetch(glimpse.url + '/health')).json()) as { load?: { in_flight: number } };
    if (health.load) assert.equal(health.load.in_flight, 0, 'glimpse has nothing in flight');
    const text = await lastAnswer(page).getByTestId('answer').innerText();
    assert.ok(!text.includes('word400'), 'the answer was cut short');
    assert.equal(await page.getByTestId('send').isVisible(), true);
    await page.screenshot({ path: join(ARTIFACTS, 'stopped.png') });
    await ctx.close();
  });

  test('a malicious Markdown answer stays inert: no script runs, no image loads, no javascript: link survives', async () => {
    const { ctx, page } = await open();
    let dialogs = 0;
    page.on('dialog', (d) => {
      dialogs++;
      void d.dismiss();
    });
    const leaks: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('leak.png') || r.url().startsWith('http://127.0.0.1:9')) leaks.push(r.url());
    });
    await ask(page, 'scenario-xss please');
    await waitStatus(page, 'done');
    const answer = lastAnswer(page).getByTestId('answer');
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.equal(dialogs, 0);
    assert.deepEqual(leaks, []);
    assert.equal(await answer.locator('img, script, iframe, svg, details').count(), 0);
    assert.equal(await answer.locator('a[href^="javascript" i]').count(), 0);
    for (const el of await answer.locator('*').all()) {
      const attrs = await el.evaluate((n) => [...n.attributes].map((a) => a.name));
      assert.ok(!attrs.some((a) => a.startsWith('on')), `no event handler attributes (${attrs.join(',')})`);
    }
    // The raw HTML is shown as text, so the reader sees what the model tried.
    assert.match(await answer.innerText(), /<img src=x onerror="window.__pwned=1">/);
    // Code blocks get a working copy button.
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write']);
    await answer.getByRole('button', { name: 'Copy' }).click();
    await answer.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'console.log("copy me");');
    await page.screenshot({ path: join(ARTIFACTS, 'xss-inert.png') });
    assert.deepEqual(
      await cspViolations(page),
      [],
      'nothing even tried to break the policy: the answer was inert before CSP',
    );
    await ctx.close();
  });

  test('bounding boxes in the answer are drawn on the image they refer to', async () => {
    const { ctx, page } = await open();
    await attach(page, 'blocks.png', await makeImage(page, 800, 600, 'image/png'), 'image/png');
    await page.getByTestId('attachment').waitFor();
    await ask(page, 'scenario-boxes where are the blocks?');
    await waitStatus(page, 'done');
    const fig = lastAnswer(page).getByTestId('boxed-image');
    await fig.waitFor();
    const img = await fig.locator('img').boundingBox();
    const rects = fig.locator('svg g.box rect');
    assert.equal(await rects.count(), 2);
    assert.ok(img);
    const first = await rects.nth(0).boundingBox();
    assert.ok(first);
    // [100,200,500,800] over 0..1000 → 10%..50% across, 20%..80% down (the 4 px stroke widens the measured box a little).
    const near = (a: number, b: number) => Math.abs(a - b) <= 6;
    assert.ok(near(first.x - img.x, img.width * 0.1), `left ${first.x - img.x} vs ${img.width * 0.1}`);
    assert.ok(near(first.y - img.y, img.height * 0.2), `top ${first.y - img.y} vs ${img.height * 0.2}`);
    assert.ok(near(first.width, img.width * 0.4), `width ${first.width} vs ${img.width * 0.4}`);
    assert.ok(near(first.height, img.height * 0.6), `height ${first.height} vs ${img.height * 0.6}`);
    // The markers themselves become numbered chips in the text, not raw tokens.
    const text = await lastAnswer(page).getByTestId('answer').innerText();
    assert.ok(!text.includes('begin_of_box'), text);
    assert.equal(await lastAnswer(page).locator('.box-ref').count(), 2);
    await fig.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'boxes.png') });
    assert.deepEqual(await cspViolations(page), []);
    await ctx.close();
  });

  test('thinking is shown in a collapsible section and kept out of the history sent back (dark theme)', async () => {
    const { ctx, page } = await open({ colorScheme: 'dark' });
    await ask(page, 'scenario-think what is it?');
    await waitStatus(page, 'done');
    const thinking = lastAnswer(page).getByTestId('thinking');
    assert.match(await thinking.locator('summary').innerText(), /Thinking/);
    assert.equal(
      await thinking.evaluate((d) => (d as HTMLDetailsElement).open),
      false,
      'folded once the answer is done',
    );
    await thinking.locator('summary').click();
    assert.match(await thinking.innerText(), /SECRET-THOUGHT/);
    assert.equal(await lastAnswer(page).getByTestId('answer').innerText(), 'It is a test pattern.');
    await page.screenshot({ path: join(ARTIFACTS, 'thinking-dark.png') });
    const before = vllm.requests.length;
    await ask(page, 'and the colours?');
    await waitStatus(page, 'done');
    const sent = vllm.requests.slice(before).find((r) => r.method === 'POST');
    const history = JSON.stringify(sent?.body.messages);
    assert.ok(!history.includes('SECRET-THOUGHT'), 'thinking never goes back');
    assert.ok(history.includes('It is a **test** pattern.'), 'the answer does');
    assert.equal(await page.getByTestId('user-message').count(), 2, 'multi-turn');
    await ctx.close();
  });

  test('keyboard: Enter sends, Shift+Enter adds a line, Esc stops; Regenerate asks again', async () => {
    const { ctx, page } = await open();
    const prompt = page.getByTestId('prompt');
    await prompt.click();
    await page.keyboard.type('line one');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('scenario-slow');
    assert.equal(await prompt.inputValue(), 'line one\nscenario-slow');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() =>
      (document.querySelector('[data-testid="answer"]')?.textContent ?? '').includes('word2'),
    );
    assert.equal(await page.getByTestId('user-message').innerText(), 'line one\nscenario-slow');
    await page.keyboard.press('Escape');
    await waitStatus(page, 'stopped');
    const posts = vllm.requests.filter((r) => r.method === 'POST').length;
    await page.getByTestId('regenerate').click();
    await page.waitForFunction(() =>
      (document.querySelector('[data-testid="answer"]')?.textContent ?? '').includes('word2'),
    );
    assert.equal(vllm.requests.filter((r) => r.method === 'POST').length, posts + 1);
    assert.equal(await page.getByTestId('assistant-message').count(), 1, 'Regenerate replaces the answer');
    await page.keyboard.press('Escape');
    await waitStatus(page, 'stopped');
    await ctx.close();
  });

  test('the page follows a Chinese browser, switches language, and keeps the conversation and settings across a reload', async () => {
    const { ctx, page } = await open({ locale: 'zh-CN' });
    assert.equal(await page.getByTestId('send').innerText(), '发送');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    await ask(page, '这是什么？');
    await waitStatus(page, 'done');
    await page.getByTestId('settings-toggle').click();
    await page.getByLabel('系统提示词').fill('Answer briefly.');
    await page.getByLabel('最大 token 数').fill('77');
    await page.getByLabel('最大 token 数').press('Tab');
    await page.screenshot({ path: join(ARTIFACTS, 'zh-settings.png') });
    await page.keyboard.press('Escape');
    assert.equal(await page.getByTestId('settings').count(), 0, 'Esc closes the settings');
    await page.getByTestId('lang-toggle').click();
    assert.equal(await page.getByTestId('send').innerText(), 'Send');
    await page.reload();
    await page.getByTestId('assistant-message').waitFor();
    assert.equal(await page.getByTestId('send').innerText(), 'Send', 'the chosen language is remembered');
    assert.equal(await page.getByTestId('user-message').innerText(), '这是什么？');
    assert.match(await lastAnswer(page).getByTestId('answer').innerText(), /generated test pattern/);
    const before = vllm.requests.length;
    await ask(page, 'again');
    await waitStatus(page, 'done');
    const sent = vllm.requests.slice(before).find((r) => r.method === 'POST')?.body;
    assert.equal(sent.max_tokens, 77);
    assert.deepEqual(sent.messages[0], { role: 'system', content: 'Answer briefly.' });
    // Clear asks first, then empties the conversation for good (a reload does not bring it back).
    page.once('dialog', (d) => void d.accept());
    await page.getByTestId('clear').click();
    await page.locator('.empty').waitFor();
    await page.reload();
    await page.locator('.empty').waitFor();
    assert.equal(await page.getByTestId('user-message').count(), 0);
    await ctx.close();
  });

  test('an answer cut by the max tokens limit says so instead of looking finished', async () => {
    const { ctx, page } = await open();
    await ask(page, 'scenario-cut');
    await waitStatus(page, 'done');
    assert.match(await lastAnswer(page).getByTestId('length-note').innerText(), /max tokens limit/);
    await ask(page, 'a normal one');
    await waitStatus(page, 'done');
    assert.equal(await lastAnswer(page).getByTestId('length-note').count(), 0);
    await ctx.close();
  });

  test('a stream with no tokens and no heartbeat is detected as stalled and offers a retry', async () => {
    const { ctx, page } = await open();
    await page.getByTestId('settings-toggle').click();
    await page.getByLabel('Consider the stream stalled after (seconds)').fill('2');
    await page.getByLabel('Consider the stream stalled after (seconds)').press('Tab');
    await page.getByRole('button', { name: 'Close settings' }).click();
    await ask(page, 'scenario-stall');
    await waitStatus(page, 'failed', 8000);
    assert.equal(await lastAnswer(page).getByTestId('failure').getAttribute('data-kind'), 'stalled');
    assert.match(await lastAnswer(page).getByTestId('failure').innerText(), /No tokens and no heartbeat for 2 s/);
    assert.equal(await lastAnswer(page).getByTestId('retry').isVisible(), true);
    await ctx.close();
  });

  /** A glimpse + double of its own, for tests whose failures would trip the shared upstream's circuit breaker. */
  async function isolated(
    script: FakeVllm['script'],
    flags: Record<string, unknown> = {},
  ): Promise<{ page: Page; glimpse: RunningGlimpse; vllm: FakeVllm; done(): Promise<void> }> {
    const v = await startFakeVllm({ script });
    const g = await startGlimpse({ engine: 'upstream', upstream: v.url, upstreamModel: v.model, ...flags });
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 }, locale: 'en-US' });
    ctx.setDefaultTimeout(10_000);
    const page = await ctx.newPage();
    await page.goto(g.url + '/');
    await page.waitForFunction(
      (id) =>
        [...document.querySelectorAll<HTMLOptionElement>('[data-testid="model-select"] option')].some(
          (o) => o.value === id,
        ),
      v.model,
    );
    return {
      page,
      glimpse: g,
      vllm: v,
      async done() {
        await ctx.close();
        await g.close();
        await v.close();
      },
    };
  }

  test('a server error is shown in words with its code and a retry that works', async () => {
    let calls = 0;
    // No retries inside glimpse, so the first failure reaches the page.
    const { page, done } = await isolated(
      () => (++calls === 1 ? { status: 500 } : { reasoning: [], content: ['Better ', 'now.'], delayMs: 5 }),
      { upstreamRetries: 0 },
    );
    try {
      await ask(page, 'first try fails');
      await waitStatus(page, 'failed');
      const failure = lastAnswer(page).getByTestId('failure');
      assert.match(await failure.innerText(), /The server answered with an error: \w+|not answering/);
      await page.screenshot({ path: join(ARTIFACTS, 'server-error.png') });
      await lastAnswer(page).getByTestId('retry').click();
      await waitStatus(page, 'done');
      assert.equal(await lastAnswer(page).getByTestId('answer').innerText(), 'Better now.');
      assert.equal(await page.getByTestId('assistant-message').count(), 1, 'Retry replaces the failed answer');
    } finally {
      await done();
    }
  });

  test('when the server asks for an API key the page shows the key field and sends it as a bearer token', async () => {
    const v = await startFakeVllm({ script: () => ({ reasoning: [], content: ['Key ', 'accepted.'], delayMs: 5 }) });
    const g = await startGlimpse({
      engine: 'upstream',
      upstream: v.url,
      upstreamModel: v.model,
      apiKeys: ['web:sk-test-123'],
    });
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 }, locale: 'en-US' });
    ctx.setDefaultTimeout(10_000);
    const page = await ctx.newPage();
    try {
      await page.goto(g.url + '/');
      // The page itself stays open; the model list answers 401, so the page asks for a key at once.
      await page.getByRole('alert').getByText('This server needs an API key').waitFor();
      await ask(page, 'hello');
      await waitStatus(page, 'failed');
      assert.equal(await lastAnswer(page).getByTestId('failure').getAttribute('data-kind'), 'unauthorized');
      assert.match(await lastAnswer(page).getByTestId('failure').innerText(), /needs a valid API key/);
      const key = page.getByTestId('api-key');
      await key.waitFor();
      await key.fill('sk-test-123');
      await key.press('Tab');
      await page.screenshot({ path: join(ARTIFACTS, 'api-key.png') });
      await page.keyboard.press('Escape');
      // With the key the model list loads and the retry is answered.
      await page.waitForFunction(
        (id) =>
          [...document.querySelectorAll<HTMLOptionElement>('[data-testid="model-select"] option')].some(
            (o) => o.value === id,
          ),
        v.model,
      );
      await lastAnswer(page).getByTestId('retry').click();
      await waitStatus(page, 'done');
      assert.equal(await lastAnswer(page).getByTestId('answer').innerText(), 'Key accepted.');
      const posts = v.requests.filter((r) => r.method === 'POST');
      assert.equal(posts.length, 1, 'the refused request never reached the model');
      assert.equal(posts[0]?.headers.authorization, undefined, "the page's key is not forwarded upstream");
    } finally {
      await ctx.close();
      await g.close();
      await v.close();
    }
  });

  test('rate limiting and timeouts are told apart, in words, with Retry-After', async () => {
    const { ctx, page } = await open();
    const answers = [
      { status: 429, headers: { 'retry-after': '7' }, code: 'queue_full', type: 'rate_limit_error' },
      { status: 504, headers: {}, code: 'request_timeout', type: 'server_error' },
      { status: 503, headers: {}, code: 'model_loading', type: 'server_error' },
    ];
    let i = 0;
    await page.route('**/v1/chat/completions', async (route) => {
      const a = answers[i++]!;
      await route.fulfill({
        status: a.status,
        headers: a.headers,
        contentType: 'application/json',
        body: JSON.stringify({ error: { message: 'no', type: a.type, param: null, code: a.code } }),
      });
    });
    await ask(page, 'hello');
    await waitStatus(page, 'failed');
    const failure = () => lastAnswer(page).getByTestId('failure');
    assert.equal(await failure().getAttribute('data-kind'), 'rate_limited');
    const first = await failure().innerText();
    assert.match(first, /Too many requests right now \(queue_full\)\. Try again in [67] s\./);
    // The wait counts down.
    const startAt = Number(/Try again in (\d+) s/.exec(first)?.[1]);
    await page.waitForFunction((n) => {
      const m = /Try again in (\d+) s/.exec(document.querySelector('[data-testid="failure"]')?.textContent ?? '');
      return !!m && Number(m[1]) < n;
    }, startAt);
    await lastAnswer(page).getByTestId('retry').click();
    await page.waitForSelector('[data-testid="failure"][data-kind="timeout"]');
    assert.match(await failure().innerText(), /The server timed out \(request_timeout\)/);
    await lastAnswer(page).getByTestId('retry').click();
    await page.waitForSelector('[data-testid="failure"][data-kind="loading"]');
    assert.match(await failure().innerText(), /still loading/);
    await ctx.close();
  });

  test('a request waiting in the queue says so, with its position, then answers', async () => {
    const {
      page,
      glimpse: g,
      done,
    } = await isolated(
      (_rec, index) =>
        index === 0
          ? { reasoning: [], content: Array.from({ length: 200 }, (_, i) => `busy${i} `), delayMs: 50 }
          : { reasoning: [], content: ['Your ', 'turn.'], delayMs: 5 },
      { maxInFlight: 1 },
    );
    const hog = new AbortController();
    try {
      // Someone else holds the only slot.
      const other = await fetch(g.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'zai-org/GLM-4.6V-Flash',
          stream: true,
          messages: [{ role: 'user', content: 'hold the slot' }],
        }),
        signal: hog.signal,
      });
      assert.equal(other.status, 200);
      // Stop while waiting takes the request out of the queue.
      await ask(page, 'never mind');
      await page.waitForSelector('[data-testid="status"][data-status="queued"]');
      await page.keyboard.press('Escape');
      await waitStatus(page, 'stopped');
      const load = async () =>
        ((await (await fetch(g.url + '/health')).json()) as { load: { queued: number; in_flight: number } }).load;
      const deadline = Date.now() + 3000;
      while ((await load()).queued !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(await load().then((l) => [l.queued, l.in_flight]), [0, 1], 'only the other request remains');
      await ask(page, 'am I queued?');
      await page.waitForSelector('[data-testid="status"][data-status="queued"]');
      assert.match(await lastAnswer(page).getByTestId('status').innerText(), /Queued, position 1/);
      await page.screenshot({ path: join(ARTIFACTS, 'queued.png') });
      hog.abort();
      await waitStatus(page, 'done');
      assert.equal(await lastAnswer(page).getByTestId('answer').innerText(), 'Your turn.');
      assert.doesNotMatch(await lastAnswer(page).innerText(), /Queued/, 'admitted: the queue badge is gone');
    } finally {
      hog.abort();
      await done();
    }
  });

  test('between admission and the first token the answer says the model is reading, then streams', async () => {
    const { page, done } = await isolated(() => ({ reasoning: [], content: ['Read ', 'it.'], delayMs: 1500 }));
    try {
      await ask(page, 'take your time');
      await page.waitForSelector('[data-testid="status"][data-status="waiting"]');
      assert.match(await lastAnswer(page).getByTestId('status').innerText(), /Reading your message/);
      await page.screenshot({ path: join(ARTIFACTS, 'waiting.png') });
      await waitStatus(page, 'done');
      assert.equal(await lastAnswer(page).getByTestId('answer').innerText(), 'Read it.');
    } finally {
      await done();
    }
  });

  test('an upstream that dies mid-answer ends as failed with the partial text kept, never as done', async () => {
    const { page, done } = await isolated(() => ({
      reasoning: [],
      content: Array.from({ length: 20 }, (_, i) => `part${i + 1} `),
      delayMs: 30,
      dieAfter: 3,
    }));
    try {
      await ask(page, 'go');
      await waitStatus(page, 'failed');
      assert.match(await lastAnswer(page).getByTestId('answer').innerText(), /part1 part2 part3/);
      assert.ok(
        ['error', 'interrupted', 'timeout', 'unavailable'].includes(
          (await lastAnswer(page).getByTestId('failure').getAttribute('data-kind')) ?? '',
        ),
      );
      assert.equal(await lastAnswer(page).getByTestId('retry').isVisible(), true);
    } finally {
      await done();
    }
  });

  test('against the simulated engine the page says the answers are synthetic, and still streams thinking and answer', async () => {
    const sim = await startGlimpse({
      engine: 'simulated',
      simulated: { ttftMs: 50, tokensPerSecond: 200, reasoningTokens: 8, answerTokens: 16 },
    });
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 }, locale: 'en-US' });
    ctx.setDefaultTimeout(10_000);
    const page = await ctx.newPage();
    try {
      await page.goto(sim.url + '/');
      await page.getByTestId('simulated').waitFor();
      await ask(page, 'hello');
      await waitStatus(page, 'done');
      assert.ok((await lastAnswer(page).getByTestId('answer').innerText()).length > 0);
      assert.equal(await lastAnswer(page).getByTestId('thinking').count(), 1);
    } finally {
      await ctx.close();
      await sim.close();
    }
  });

  test('on a phone-sized screen the page fits and stays usable', async () => {
    const { ctx, page } = await open({ width: 390, height: 844 });
    await attach(page, 'phone.jpg', await makeImage(page, 1200, 1600), 'image/jpeg');
    await page.getByTestId('attachment').waitFor();
    await ask(page, 'scenario-boxes on a phone');
    await waitStatus(page, 'done');
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.equal(overflow, 0, 'no sideways scrolling');
    for (const id of ['send', 'attach', 'prompt', 'settings-toggle'])
      assert.equal(await page.getByTestId(id).isVisible(), true, id);
    await page.screenshot({ path: join(ARTIFACTS, 'phone.png') });
    await page.getByTestId('theme-toggle').click(); // system → light
    await page.getByTestId('theme-toggle').click(); // light → dark
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
    await page.getByTestId('settings-toggle').click();
    await page.screenshot({ path: join(ARTIFACTS, 'phone-dark-settings.png') });
    await ctx.close();
  });

  test('when the server goes away the page says so and offers a retry', async () => {
    const vllm2 = await startFakeVllm();
    const g2 = await startGlimpse({ engine: 'upstream', upstream: vllm2.url, upstreamModel: vllm2.model });
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 }, locale: 'en-US' });
    ctx.setDefaultTimeout(10_000);
    const page = await ctx.newPage();
    await page.goto(g2.url + '/');
    await page.getByTestId('server-state').getByText('Connected').waitFor();
    await g2.close();
    await vllm2.close();
    await ask(page, 'Are you there?');
    await waitStatus(page, 'failed');
    assert.equal(await lastAnswer(page).getByTestId('failure').getAttribute('data-kind'), 'unreachable');
    assert.match(await lastAnswer(page).getByTestId('failure').innerText(), /Cannot reach the glimpse server/);
    await page.getByTestId('server-state').getByText('Server unreachable').waitFor();
    assert.equal(await lastAnswer(page).getByTestId('retry').isVisible(), true);
    await page.screenshot({ path: join(ARTIFACTS, 'server-down.png') });
    await ctx.close();
  });
});
