/**
 * CORS and CSP as a browser enforces them (Debian's Chromium through playwright-core): a page on a
 * listed origin streams an answer from glimpse with an API key (preflight and all); the same code on
 * an origin not listed is blocked by the browser; glimpse's own page and its API docs run under
 * their Content-Security-Policy with zero violations.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, haveChromium, launchChromium } from '../helpers/browser.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';

/** A site on its own origin: one empty HTML page, from which the test runs fetch(). */
async function startSite(): Promise<{ origin: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html><head><title>another app</title></head><body>another app</body></html>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Streams a chat completion from the page's context; returns the text deltas or the error the browser gave. */
function streamFrom(
  page: Page,
  api: string,
): Promise<{ ok: true; text: string; requestId: string | null } | { ok: false; error: string }> {
  return page.evaluate(async (api) => {
    try {
      const res = await fetch(api + '/v1/chat/completions', {
        method: 'POST',
        headers: {
          authorization: 'Bearer sk-web-123',
          'content-type': 'application/json',
          'x-request-id': 'from-the-page',
        },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }], max_tokens: 6, stream: true }),
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let raw = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        raw += decoder.decode(value, { stream: true });
      }
      let text = '';
      for (const line of raw.split('\n')) {
        if (!line.startsWith('data: {')) continue;
        text +=
          (JSON.parse(line.slice(6)) as { choices: Array<{ delta?: { content?: string } }> }).choices[0]?.delta
            ?.content ?? '';
      }
      return { ok: true as const, text, requestId: res.headers.get('x-request-id') };
    } catch (err) {
      return { ok: false as const, error: String(err) };
    }
  }, api);
}

describe('CORS and CSP in Chromium', { skip: haveChromium ? false : `no Chromium at ${CHROMIUM}` }, () => {
  let allowed: { origin: string; server: Server };
  let foreign: { origin: string; server: Server };
  let g: RunningGlimpse;
  let browser: Browser;

  before(async () => {
    allowed = await startSite();
    foreign = await startSite();
    g = await startGlimpse({
      engine: 'simulated',
      simulated: { ttftMs: 1, tokensPerSecond: 500 },
      apiKeys: ['web:sk-web-123'],
      corsOrigins: [allowed.origin],
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await g?.close();
    allowed?.server.close();
    foreign?.server.close();
  });

  test('a page on a listed origin streams an answer, and can read the request id', async () => {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(allowed.origin + '/');
      const r = await streamFrom(page, g.url);
      assert.ok(r.ok, `the browser let the page read the stream: ${JSON.stringify(r)}`);
      assert.ok(r.text.length > 0, 'text arrived');
      assert.equal(r.requestId, 'from-the-page', 'x-request-id is exposed to the page');
    } finally {
      await ctx.close();
    }
  });

  test('the same page on an origin not listed is blocked by the browser', async () => {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      const console: string[] = [];
      page.on('console', (m) => console.push(m.text()));
      await page.goto(foreign.origin + '/');
      const r = await streamFrom(page, g.url);
      assert.equal(r.ok, false);
      assert.match((r as { error: string }).error, /TypeError: Failed to fetch/);
      assert.ok(
        console.some((l) => /blocked by CORS policy/.test(l)),
        `Chromium says why: ${console.join(' | ')}`,
      );
    } finally {
      await ctx.close();
    }
  });

  for (const [what, path, ready] of [
    ['the page', '/', '[data-testid="prompt"]'],
    ['the API docs', '/docs', '.swagger-ui .info'],
  ] as const) {
    test(`${what} works under its Content-Security-Policy with zero violations`, async () => {
      const ctx = await browser.newContext();
      try {
        await ctx.addInitScript(() => {
          const w = window as unknown as { __csp: string[] };
          w.__csp = [];
          document.addEventListener('securitypolicyviolation', (e) =>
            w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
          );
        });
        const page = await ctx.newPage();
        const res = await page.goto(g.url + path);
        assert.ok(res?.headers()['content-security-policy'], 'served with a policy');
        await page.waitForSelector(ready, { timeout: 15_000 });
        assert.deepEqual(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp), []);
      } finally {
        await ctx.close();
      }
    });
  }
});
