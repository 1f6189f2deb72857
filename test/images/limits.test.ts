import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageSettings, resolveImage, resolveImages, type ImageSettings } from '../../src/images/index.js';
import { isGlimpseError, type GenerateRequest } from '../../src/core/index.js';
import { loadConfig } from '../../src/config/index.js';
import { png, pngBomb } from './fixtures.js';

const withLimits = (over: Partial<ImageSettings>) => ({ images: { ...imageSettings(), ...over } });

const rejectsWith = (p: Promise<unknown>, code: string, status: number, ...mustName: string[]) =>
  assert.rejects(p, (err: unknown) => {
    assert.ok(isGlimpseError(err), `expected a GlimpseError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status);
    for (const s of mustName) assert.ok(err.message.includes(s), `message "${err.message}" names ${s}`);
    return true;
  });

test('images.maxBytes: exactly at the limit passes, one byte over is refused with 413 naming limit and value', async () => {
  const bytes = await png(32, 32);
  const n = bytes.length;
  await resolveImage({ kind: 'bytes', data: bytes }, withLimits({ maxBytes: n }));
  await rejectsWith(
    resolveImage({ kind: 'bytes', data: bytes }, withLimits({ maxBytes: n - 1 })),
    'image_too_large',
    413,
    'images.maxBytes',
    String(n - 1),
    String(n),
  );
  // decoded base64 counts the same way
  await rejectsWith(
    resolveImage({ kind: 'base64', data: bytes.toString('base64') }, withLimits({ maxBytes: n - 1 })),
    'image_too_large',
    413,
  );
});

test('images.maxBase64Length is checked on the text before decoding, for bare base64 and data URLs', async () => {
  const b64 = (await png(32, 32)).toString('base64');
  const L = b64.length;
  await resolveImage({ kind: 'base64', data: b64 }, withLimits({ maxBase64Length: L }));
  await rejectsWith(
    resolveImage({ kind: 'base64', data: b64 }, withLimits({ maxBase64Length: L - 1 })),
    'base64_too_long',
    413,
    'images.maxBase64Length',
    String(L),
  );
  await resolveImage({ kind: 'dataUrl', url: `data:image/png;base64,${b64}` }, withLimits({ maxBase64Length: L }));
  await rejectsWith(
    resolveImage({ kind: 'dataUrl', url: `data:image/png;base64,${b64}` }, withLimits({ maxBase64Length: L - 1 })),
    'base64_too_long',
    413,
    String(L),
  );
  // refused even when the text is garbage: the length check comes before any decoding
  await rejectsWith(
    resolveImage({ kind: 'base64', data: '!'.repeat(101) }, withLimits({ maxBase64Length: 100 })),
    'base64_too_long',
    413,
  );
});

test('images.maxPixels: width x height exactly at the limit passes, one pixel over is refused with 422', async () => {
  const bytes = await png(40, 30);
  await resolveImage({ kind: 'bytes', data: bytes }, withLimits({ maxPixels: 1200 }));
  await rejectsWith(
    resolveImage({ kind: 'bytes', data: bytes }, withLimits({ maxPixels: 1199 })),
    'image_too_many_pixels',
    422,
    '40x30',
    '1200',
    'images.maxPixels',
    '1199',
  );
});

test('rejects a PNG whose header claims 60000x60000 before decoding it', async () => {
  const bomb = pngBomb(60000, 60000);
  assert.ok(bomb.length < 4096, `the bomb is small (${bomb.length} bytes)`);
  const before = process.memoryUsage().rss;
  await rejectsWith(
    resolveImage({ kind: 'bytes', data: bomb }),
    'image_too_many_pixels',
    422,
    '60000x60000',
    '3600000000',
  );
  // a decode would need 10.8 GB of pixels; refusing from the header costs almost nothing
  assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024);
});

test('images.maxImagesPerRequest: exactly at the limit passes, one more is refused before any image is read', async () => {
  const bytes = await png(8, 8);
  const req = (n: number, broken = false): GenerateRequest => ({
    id: 'r',
    model: 'm',
    sampling: { maxTokens: 8, temperature: 0, topP: 1, stop: [] },
    messages: [
      {
        role: 'user',
        content: Array.from({ length: n }, () => ({
          type: 'image' as const,
          source: { kind: 'bytes' as const, data: broken ? Buffer.from('junk') : bytes },
        })),
      },
    ],
  });
  await resolveImages(req(2), withLimits({ maxImagesPerRequest: 2 }));
  // with broken images, too_many_images (not invalid_image) proves the count is checked first
  await rejectsWith(
    resolveImages(req(3, true), withLimits({ maxImagesPerRequest: 2 })),
    'too_many_images',
    422,
    '3',
    'images.maxImagesPerRequest',
    '2',
  );
});

test('image settings load from env with lists split on commas', () => {
  const c = loadConfig({
    env: {
      GLIMPSE_IMAGES_MAX_BYTES: '1234',
      GLIMPSE_IMAGES_ALLOW_DOMAINS: 'a.test, b.test',
      GLIMPSE_IMAGES_ALLOW_PRIVATE_NETWORKS: 'true',
    },
  });
  assert.equal(c.images.maxBytes, 1234);
  assert.deepEqual(c.images.allowDomains, ['a.test', 'b.test']);
  assert.equal(c.images.allowPrivateNetworks, true);
  assert.equal(c.images.maxEdge, 1024);
  const d = loadConfig({ env: {} });
  assert.equal(d.images.maxBytes, 10 * 1024 * 1024);
  assert.equal(d.images.allowPrivateNetworks, false);
  assert.equal(d.images.maxRedirects, 3);
});

test('imageStats counts resolved images and refusals by code', async () => {
  const { imageStats } = await import('../../src/images/index.js');
  const before = imageStats();
  await resolveImage({ kind: 'bytes', data: await png(8, 8) });
  await resolveImage({ kind: 'bytes', data: Buffer.from('nope') }).catch(() => {});
  const after = imageStats();
  assert.equal(after.resolved, before.resolved + 1);
  assert.equal(after.refused['invalid_image'], (before.refused['invalid_image'] ?? 0) + 1);
  assert.ok(after.normalizeMs > before.normalizeMs);
});

test('images.maxAspectRatio: exactly at the limit passes, beyond it is refused from the header with 422', async () => {
  const strip = async (w: number, h: number) =>
    (await import('sharp'))
      .default({ create: { width: w, height: h, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
  await resolveImage({ kind: 'bytes', data: await strip(400, 2) }, withLimits({ maxAspectRatio: 200 }));
  await resolveImage({ kind: 'bytes', data: await strip(2, 400) }, withLimits({ maxAspectRatio: 200 }));
  await rejectsWith(
    resolveImage({ kind: 'bytes', data: await strip(402, 2) }, withLimits({ maxAspectRatio: 200 })),
    'image_aspect_ratio_too_large',
    422,
    '402x2',
    '201:1',
    'images.maxAspectRatio',
    '200:1',
  );
  await rejectsWith(
    resolveImage({ kind: 'bytes', data: await strip(2, 402) }, withLimits({ maxAspectRatio: 200 })),
    'image_aspect_ratio_too_large',
    422,
  );
});

test('a PNG claiming 1835032x24 (under the pixel limit, found by the fuzz costing 1.6 GB to resize) is refused from its header', async () => {
  await rejectsWith(
    resolveImage({ kind: 'bytes', data: pngBomb(1835032, 24) }),
    'image_aspect_ratio_too_large',
    422,
    '1835032x24',
  );
});

test('image stats count the refused image by its code, not the images of its request that were cancelled because of it', async () => {
  const { createServer } = await import('node:http');
  const { imageStats } = await import('../../src/images/index.js');
  // An image URL that never answers: its fetch only ends when the request is cancelled.
  let socketClosed!: Promise<void>;
  const server = createServer(() => {});
  server.on('connection', (socket) => (socketClosed = new Promise((resolve) => socket.on('close', () => resolve()))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;
  const before = imageStats().refused;
  const req: GenerateRequest = {
    id: 'r',
    model: 'm',
    sampling: { maxTokens: 8, temperature: 0, topP: 1, stop: [] },
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image', source: { kind: 'url', url: `http://127.0.0.1:${port}/never.png` } },
          { type: 'image', source: { kind: 'bytes', data: Buffer.from('not an image') } },
        ],
      },
    ],
  };
  try {
    await rejectsWith(resolveImages(req, withLimits({ allowPrivateNetworks: true })), 'invalid_image', 422);
    // resolveImages answers at the first refusal; let the cancelled fetch tear down and settle too.
    await socketClosed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = imageStats().refused;
    const delta = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    assert.equal(delta('invalid_image'), 1);
    assert.deepEqual(
      Object.keys(after).filter((code) => delta(code) !== 0),
      ['invalid_image'],
      'the cancelled fetch is not counted as refused',
    );
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('maxEdgeFor: a model\'s profile wins, any other model (or none, or "constructor") gets images.maxEdge', async () => {
  const { maxEdgeFor } = await import('../../src/images/index.js');
  const s = { ...imageSettings(), maxEdge: 800, maxEdgeByModel: { small: 448 } };
  assert.equal(maxEdgeFor(s, 'small'), 448);
  assert.equal(maxEdgeFor(s, 'big'), 800);
  assert.equal(maxEdgeFor(s, undefined), 800);
  assert.equal(maxEdgeFor(s, 'constructor'), 800);
  assert.equal(maxEdgeFor(s, '__proto__'), 800);
});
