import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { resolveImage, resolveImages, sniffImageFormat, toDataUrl } from '../../src/images/index.js';
import type { GenerateRequest, ImageSource } from '../../src/core/index.js';
import { jpeg, photo, photoPixels, png, rejectsWith } from './fixtures.js';

/** Mean RGB of the normalized image, decoded back. */
async function meanColour(data: Buffer) {
  const { channels } = await sharp(data).stats();
  return channels.slice(0, 3).map((c) => Math.round(c.mean));
}

test('a JPEG arrives the same way as a data URL, bare base64 and an upload', async () => {
  const bytes = await jpeg(64, 48);
  const sources: ImageSource[] = [
    { kind: 'dataUrl', url: `data:image/jpeg;base64,${bytes.toString('base64')}` },
    { kind: 'base64', data: bytes.toString('base64') },
    { kind: 'bytes', data: bytes, filename: 'x.jpg' },
  ];
  const out = await Promise.all(sources.map((s) => resolveImage(s)));
  for (const img of out) {
    assert.equal(img.sourceFormat, 'jpeg');
    assert.equal(img.width, 64);
    assert.equal(img.height, 48);
    assert.equal(img.mime, 'image/jpeg');
    assert.equal(sniffImageFormat(img.data), 'jpeg');
    assert.match(img.sha256, /^[0-9a-f]{64}$/);
    assert.match(img.phash!, /^[0-9a-f]{16}$/);
  }
  assert.equal(out[0]!.sha256, out[1]!.sha256);
  assert.equal(out[1]!.sha256, out[2]!.sha256);
});

test('the declared type of a data URL is ignored: a PNG labelled image/gif is read as PNG', async () => {
  const bytes = await png(20, 10);
  const img = await resolveImage({ kind: 'dataUrl', url: `data:image/gif;base64,${bytes.toString('base64')}` });
  assert.equal(img.sourceFormat, 'png');
});

test('every supported format decodes: JPEG, PNG, WebP, GIF, AVIF, TIFF', async () => {
  const base = () => photo(50, 40, 3);
  const files: Record<string, Buffer> = {
    jpeg: await base().jpeg().toBuffer(),
    png: await base().png().toBuffer(),
    webp: await base().webp().toBuffer(),
    gif: await base().gif().toBuffer(),
    avif: await base().avif().toBuffer(),
    tiff: await base().tiff().toBuffer(),
  };
  for (const [format, bytes] of Object.entries(files)) {
    assert.equal(sniffImageFormat(bytes), format);
    const img = await resolveImage({ kind: 'bytes', data: bytes });
    assert.equal(img.sourceFormat, format);
    assert.deepEqual([img.width, img.height], [50, 40], format);
  }
});

test('an animated GIF gives its first frame', async () => {
  const red = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#ff0000' } })
    .png()
    .toBuffer();
  const blue = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#0000ff' } })
    .png()
    .toBuffer();
  const gif = await sharp([red, blue], { join: { animated: true } })
    .gif()
    .toBuffer();
  assert.equal((await sharp(gif).metadata()).pages, 2);
  const img = await resolveImage({ kind: 'bytes', data: gif });
  assert.deepEqual([img.width, img.height], [30, 20]);
  const [r, , b] = await meanColour(img.data);
  assert.ok(r! > 200 && b! < 60, `first frame is red, got ${r},${b}`);
});

test('EXIF orientation 6 is applied: a 60x20 JPEG tagged "rotate 90" comes out 20x60', async () => {
  const bytes = await photo(60, 20).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(bytes).metadata()).orientation, 6);
  const img = await resolveImage({ kind: 'bytes', data: bytes });
  assert.deepEqual([img.width, img.height], [20, 60]);
  assert.equal(
    (await sharp(img.data).metadata()).orientation,
    undefined,
    'the output carries no orientation tag to apply twice',
  );
});

test('alpha is flattened onto white', async () => {
  const transparent = await sharp({
    create: { width: 16, height: 16, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
  })
    .png()
    .toBuffer();
  const img = await resolveImage({ kind: 'bytes', data: transparent });
  const meta = await sharp(img.data).metadata();
  assert.equal(meta.hasAlpha, false);
  assert.deepEqual(await meanColour(img.data), [255, 255, 255]);
});

test('CMYK JPEGs and 16-bit PNGs become 8-bit sRGB', async () => {
  const cmyk = await photo(40, 30).toColourspace('cmyk').jpeg().toBuffer();
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  const png16 = await photo(40, 30).toColourspace('rgb16').png().toBuffer();
  assert.equal((await sharp(png16).metadata()).depth, 'ushort');
  for (const bytes of [cmyk, png16]) {
    const img = await resolveImage({ kind: 'bytes', data: bytes });
    const meta = await sharp(img.data).metadata();
    assert.equal(meta.space, 'srgb');
    assert.equal(meta.depth, 'uchar');
    assert.equal(meta.channels, 3);
  }
});

test('large images shrink so the longest edge is images.maxEdge; small ones are never enlarged', async () => {
  const big = await resolveImage({ kind: 'bytes', data: await jpeg(2000, 1500) });
  assert.deepEqual([big.width, big.height], [1024, 768]);
  const tall = await resolveImage({ kind: 'bytes', data: await png(300, 1200) });
  assert.deepEqual([tall.width, tall.height], [256, 1024]);
  const small = await resolveImage({ kind: 'bytes', data: await png(100, 50) });
  assert.deepEqual([small.width, small.height], [100, 50]);
});

test('a model profile may set its own bound (448), and images.maxEdge comes from config', async () => {
  const bytes = await jpeg(1000, 500);
  const profiled = await resolveImage({ kind: 'bytes', data: bytes }, undefined, undefined, { maxEdge: 448 });
  assert.deepEqual([profiled.width, profiled.height], [448, 224]);
  const configured = await resolveImage(
    { kind: 'bytes', data: bytes },
    { images: { ...(await defaults()), maxEdge: 200 } },
  );
  assert.deepEqual([configured.width, configured.height], [200, 100]);
});

test('the normalized encoding follows images.outputFormat and is recorded in mime', async () => {
  const bytes = await png(30, 20);
  for (const [format, mime] of [
    ['png', 'image/png'],
    ['webp', 'image/webp'],
    ['jpeg', 'image/jpeg'],
  ] as const) {
    const img = await resolveImage(
      { kind: 'bytes', data: bytes },
      { images: { ...(await defaults()), outputFormat: format } },
    );
    assert.equal(img.mime, mime);
    assert.equal(sniffImageFormat(img.data), format);
    assert.ok(toDataUrl(img).startsWith(`data:${mime};base64,`));
  }
});

test('BMP, SVG and HEIC are named and refused with 415 unsupported_media_type', async () => {
  const bmp = Buffer.alloc(70);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(70, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  const svg = Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
  const heic = Buffer.concat([
    Buffer.from([0, 0, 0, 24]),
    Buffer.from('ftypheic\0\0\0\0mif1heic', 'latin1'),
    Buffer.alloc(32),
  ]);
  for (const [bytes, name] of [
    [bmp, 'BMP'],
    [svg, 'SVG'],
    [heic, 'HEIC'],
  ] as const) {
    await rejectsWith(resolveImage({ kind: 'bytes', data: bytes }), 'unsupported_media_type', new RegExp(name));
  }
});

test('bytes that are no image, an empty upload and a truncated JPEG are refused with invalid_image', async () => {
  await rejectsWith(resolveImage({ kind: 'bytes', data: Buffer.from('hello, this is text') }), 'invalid_image');
  await rejectsWith(resolveImage({ kind: 'bytes', data: Buffer.alloc(0) }), 'invalid_image');
  const whole = await jpeg(200, 150);
  await rejectsWith(
    resolveImage({ kind: 'bytes', data: whole.subarray(0, Math.floor(whole.length / 2)) }),
    'invalid_image',
    /JPEG/,
  );
  await rejectsWith(resolveImage({ kind: 'base64', data: 'not base64 at all!' }), 'invalid_image', /base64/);
});

test('a data URL that is not base64 is refused with invalid_image_url', async () => {
  await rejectsWith(resolveImage({ kind: 'dataUrl', url: 'data:image/png,rawtext' }), 'invalid_image_url');
  await rejectsWith(
    resolveImage({ kind: 'dataUrl', url: 'data:' + 'x'.repeat(500) + ';base64,AAAA' }),
    'invalid_image_url',
  );
});

test('resolveImages fills every image part of every message, in place', async () => {
  const a = await png(20, 20, 1);
  const b = await jpeg(30, 10, 2);
  const req: GenerateRequest = {
    id: 'r1',
    model: 'm',
    sampling: { maxTokens: 8, temperature: 0, topP: 1, stop: [] },
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'hi' },
          { type: 'image', source: { kind: 'bytes', data: a } },
        ],
      },
      { role: 'user', content: [{ type: 'image', source: { kind: 'base64', data: b.toString('base64') } }] },
    ],
  };
  await resolveImages(req);
  const images = req.messages.flatMap((m) => m.content).filter((p) => p.type === 'image');
  assert.deepEqual(
    images.map((p) => p.type === 'image' && [p.resolved?.width, p.resolved?.height]),
    [
      [20, 20],
      [30, 10],
    ],
  );
});

test('normalization does not block the event loop while a large photo decodes', async () => {
  const bytes = await jpeg(3000, 2000);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await resolveImage({ kind: 'bytes', data: bytes });
  clearInterval(timer);
  assert.ok(ticks > 0, 'timers kept firing during the decode');
});

async function defaults() {
  const { imageSettings } = await import('../../src/images/index.js');
  return imageSettings();
}

void photoPixels;

test('an sRGB-tagged image skips the identity colour transform; a Display P3 one is converted to sRGB', async () => {
  const untagged = await photo(64, 48, 4).png().toBuffer();
  const srgb = await photo(64, 48, 4).withIccProfile('srgb').png().toBuffer();
  const p3 = await photo(64, 48, 4).withIccProfile('p3').png().toBuffer();
  const [u, s, p] = await Promise.all([untagged, srgb, p3].map((data) => resolveImage({ kind: 'bytes', data })));
  assert.equal(s!.sha256, u!.sha256, 'sRGB to sRGB leaves the pixels as they are');
  assert.notEqual(p!.sha256, u!.sha256, 'P3 pixels are moved into sRGB');
});

test('base64 wrapped at 76 columns and URL-safe base64 both decode', async () => {
  const bytes = await png(30, 30, 8);
  const wrapped = bytes.toString('base64').replace(/.{76}/g, '$&\r\n');
  const urlSafe = bytes.toString('base64url');
  for (const data of [wrapped, urlSafe]) {
    const img = await resolveImage({ kind: 'base64', data });
    assert.deepEqual([img.width, img.height], [30, 30]);
  }
});

test('output "pixels" skips the encode and keeps the RGB; "encoded" keeps bytes and lets the pixels go', async () => {
  const bytes = await jpeg(120, 80);
  const pixels = await resolveImage({ kind: 'bytes', data: bytes }, undefined, undefined, { output: 'pixels' });
  const encoded = await resolveImage({ kind: 'bytes', data: bytes }, undefined, undefined, { output: 'encoded' });
  assert.equal(pixels.data, undefined);
  assert.equal(pixels.mime, undefined);
  assert.deepEqual([pixels.rgb?.width, pixels.rgb?.height, pixels.rgb?.data.length], [120, 80, 120 * 80 * 3]);
  assert.equal(encoded.rgb, undefined, 'a queued request for a network engine holds only the encoded bytes');
  assert.equal(sniffImageFormat(encoded.data!), 'jpeg');
  // Same pixels either way: the fingerprints (and so cache keys) do not depend on the engine kind.
  assert.equal(pixels.sha256, encoded.sha256);
  assert.equal(pixels.phash, encoded.phash);
  // The kept pixels are the normalized image: decoding the encoded copy gives (nearly) the same.
  const back = await sharp(encoded.data!).raw().toBuffer();
  let diff = 0;
  for (let i = 0; i < back.length; i++) diff += Math.abs(back[i]! - pixels.rgb!.data[i]!);
  assert.ok(diff / back.length < 4, `mean difference ${diff / back.length}`);
  assert.throws(() => toDataUrl(pixels), /needs encoded bytes/);
});
