/**
 * CORS allowlist and security headers over real HTTP: preflights for API routes, Allow-Origin
 * echoed only for listed origins on answers, refusals, 404s and SSE streams, rate-limit and
 * request-id headers exposed, and clear start-up errors for a malformed origin list.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config/index.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';

const ALLOWED = 'https://app.example.com';
const FOREIGN = 'https://evil.example.net';
const chat = { messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 };

describe('with --cors-origins and API keys', () => {
  let g: RunningGlimpse;
  before(async () => {
    g = await startGlimpse({
      engine: 'simulated',
      simulated: { ttftMs: 1, tokensPerSecond: 2000 },
      apiKeys: ['web:sk-web-123'],
      corsOrigins: [ALLOWED, 'http://localhost:5173'],
      quotas: { requestsPerMinute: 100 },
    });
  });
  after(() => g.close());

  test('a preflight from a listed origin names the methods, headers and max-age, without an API key', async () => {
    const res = await fetch(g.url + '/v1/chat/completions', {
      method: 'OPTIONS',
      headers: {
        origin: ALLOWED,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,x-request-id',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), ALLOWED);
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').split(/,\s*/);
    for (const h of ['authorization', 'content-type', 'x-api-key', 'x-request-id']) assert.ok(allowed.includes(h), h);
    assert.equal(res.headers.get('access-control-max-age'), '600');
    assert.equal(res.headers.get('access-control-allow-credentials'), null, 'never with credentials');
    assert.match(res.headers.get('vary') ?? '', /origin/i);
  });

  test('a preflight from a foreign origin gets no Allow-Origin, so the browser refuses', async () => {
    const res = await fetch(g.url + '/v1/chat/completions', {
      method: 'OPTIONS',
      headers: { origin: FOREIGN, 'access-control-request-method': 'POST' },
    });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });

  test('a look-alike origin (listed origin as a prefix or with a path) is not allowed', async () => {
    for (const origin of [ALLOWED + '.evil.test', 'http://app.example.com', ALLOWED + ':8443']) {
      const res = await fetch(g.url + '/v1/models', { headers: { origin, authorization: 'Bearer sk-web-123' } });
      assert.equal(res.headers.get('access-control-allow-origin'), null, origin);
    }
  });

  test('answers, SSE streams, 401s and 404s carry Allow-Origin for a listed origin, and expose the request id and rate limits', async () => {
    const stream = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { origin: ALLOWED, authorization: 'Bearer sk-web-123', 'content-type': 'application/json' },
      body: JSON.stringify({ ...chat, stream: true }),
    });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type') ?? '', /text\/event-stream/);
    assert.equal(stream.headers.get('access-control-allow-origin'), ALLOWED);
    const exposed = (stream.headers.get('access-control-expose-headers') ?? '').split(/,\s*/);
    for (const h of ['x-request-id', 'x-ratelimit-remaining-requests', 'retry-after'])
      assert.ok(exposed.includes(h), h);
    assert.ok(stream.headers.get('x-ratelimit-remaining-requests'), 'the quota headers are there to be read');
    assert.match(await stream.text(), /\[DONE\]/);

    const unauthorized = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { origin: ALLOWED, 'content-type': 'application/json' },
      body: JSON.stringify(chat),
    });
    assert.equal(unauthorized.status, 401);
    assert.equal(
      unauthorized.headers.get('access-control-allow-origin'),
      ALLOWED,
      'a page can read why it was refused',
    );
    const missing = await fetch(g.url + '/nothing', { headers: { origin: ALLOWED } });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('access-control-allow-origin'), ALLOWED);
    const foreign = await fetch(g.url + '/v1/models', {
      headers: { origin: FOREIGN, authorization: 'Bearer sk-web-123' },
    });
    assert.equal(foreign.status, 200, "CORS is the browser's refusal; a non-browser client with a key is still served");
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  });

  test('every answer carries the security headers; the API forbids everything, the page keeps its own policy', async () => {
    for (const path of ['/v1/models', '/health', '/v1/nothing']) {
      const res = await fetch(g.url + path, { headers: { authorization: 'Bearer sk-web-123' } });
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      assert.match(
        res.headers.get('content-security-policy') ?? '',
        /default-src 'none'.*frame-ancestors 'none'/,
        path,
      );
      assert.equal(res.headers.get('strict-transport-security'), null, "HSTS is the TLS proxy's decision");
    }
    const page = await fetch(g.url + '/');
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    const docs = await fetch(g.url + '/docs/static/index.html');
    assert.match(
      docs.headers.get('content-security-policy') ?? '',
      /script-src 'self'/,
      'the docs page can run its own scripts',
    );
  });
});

test('without --cors-origins no origin is allowed, and preflights are not answered with Allow-Origin', async () => {
  const g = await startGlimpse({ engine: 'simulated' });
  try {
    const pre = await fetch(g.url + '/v1/chat/completions', {
      method: 'OPTIONS',
      headers: { origin: ALLOWED, 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
    const res = await fetch(g.url + '/v1/models', { headers: { origin: ALLOWED } });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin');
  } finally {
    await g.close();
  }
});

test('--cors-any-origin answers * and never allows credentials', async () => {
  const g = await startGlimpse({ engine: 'simulated', corsAnyOrigin: true });
  try {
    const res = await fetch(g.url + '/v1/models', { headers: { origin: FOREIGN } });
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('access-control-allow-credentials'), null);
  } finally {
    await g.close();
  }
});

test('a malformed origin list is a start-up error that names the flag and shows the right form', () => {
  for (const bad of ['https://app.example.com/', 'app.example.com', '*', 'https://a.example/path', 'ftp://a.example']) {
    assert.throws(
      () => loadConfig({ flags: { corsOrigins: bad }, env: {} }),
      (err: Error) =>
        err instanceof ConfigError &&
        /corsOrigins\.0: must be an origin, scheme:\/\/host\[:port\]/.test(err.message) &&
        /--cors-origins/.test(err.message) &&
        (bad !== '*' || /--cors-any-origin/.test(err.message)),
      bad,
    );
  }
  const ok = loadConfig({
    flags: { corsOrigins: 'https://a.example, http://localhost:5173,http://[::1]:8080' },
    env: {},
  });
  assert.deepEqual(ok.corsOrigins, ['https://a.example', 'http://localhost:5173', 'http://[::1]:8080']);
  assert.deepEqual(loadConfig({ env: { GLIMPSE_CORS_ORIGINS: 'https://b.example' } }).corsOrigins, [
    'https://b.example',
  ]);
});
