// registerWebUi on a bare fastify app: caching, security headers, the page's config, the
// placeholder when the page is not built, and that it never swallows other paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { registerWebUi, PAGE_SECURITY_HEADERS } from '../../src/webui/index.js';

function fakeDist(): string {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-web-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html><script type="module" src="/assets/index-abc123.js"></script>',
  );
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  return dir;
}

test('the built page is served with no-cache, hashed assets as immutable, and the security headers on both', async (t) => {
  const dist = fakeDist();
  const app = Fastify();
  t.after(async () => {
    await app.close();
    rmSync(dist, { recursive: true, force: true });
  });
  await registerWebUi(app, { distDir: dist });
  const index = await app.inject({ url: '/' });
  assert.equal(index.statusCode, 200);
  assert.match(index.body, /index-abc123\.js/);
  assert.equal(index.headers['cache-control'], 'no-cache');
  for (const [k, v] of Object.entries(PAGE_SECURITY_HEADERS)) assert.equal(index.headers[k], v, k);
  const asset = await app.inject({ url: '/assets/index-abc123.js' });
  assert.equal(asset.statusCode, 200);
  assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal(asset.headers['content-security-policy'], PAGE_SECURITY_HEADERS['content-security-policy']);
});

test('the page learns the image bound and heartbeat interval from /ui/config.json', async (t) => {
  const dist = fakeDist();
  const app = Fastify();
  t.after(async () => {
    await app.close();
    rmSync(dist, { recursive: true, force: true });
  });
  await registerWebUi(app, { distDir: dist, imageMaxEdge: 768, heartbeatInterval: 5 });
  const res = await app.inject({ url: '/ui/config.json' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), {
    imageMaxEdge: 768,
    imageMaxBytes: 10 * 1024 * 1024,
    maxImagesPerMessage: 8,
    heartbeatSeconds: 5,
  });
});

test('unknown paths fall through to the app, and API routes registered beside the page keep working', async (t) => {
  const dist = fakeDist();
  const app = Fastify();
  t.after(async () => {
    await app.close();
    rmSync(dist, { recursive: true, force: true });
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: { code: 'not_found' } }));
  app.get('/health', async () => ({ status: 'healthy' }));
  await registerWebUi(app, { distDir: dist });
  const missing = await app.inject({ url: '/v1/not-a-route' });
  assert.equal(missing.statusCode, 404);
  assert.deepEqual(missing.json(), { error: { code: 'not_found' } });
  const health = await app.inject({ url: '/health' });
  assert.deepEqual(health.json(), { status: 'healthy' });
  assert.equal(health.headers['content-security-policy'], undefined, 'API answers do not get the page headers');
});

test('without a build, / explains how to build the page instead of failing', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'glimpse-web-empty-'));
  const app = Fastify({ logger: false });
  t.after(async () => {
    await app.close();
    rmSync(empty, { recursive: true, force: true });
  });
  await registerWebUi(app, { distDir: empty });
  const res = await app.inject({ url: '/' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /text\/html/);
  assert.match(res.body, /npm run build:web/);
  assert.equal(res.headers['cache-control'], 'no-store');
});
