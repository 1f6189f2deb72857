import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { quickHeader } from '../../src/images/header.js';
import { resolveImage, sniffImageFormat } from '../../src/images/index.js';
import { isSupportedFormat } from '../../src/images/sniff.js';
import { photo, pngBomb, rejectsWith } from './fixtures.js';

/** What libvips itself reads from the header. */
async function libvipsSize(b: Buffer) {
  const m = await sharp(b).metadata();
  return { width: m.width, height: m.height };
}

function quick(b: Buffer) {
  const f = sniffImageFormat(b);
  assert.ok(isSupportedFormat(f));
  return quickHeader(b, f);
}

test('the JavaScript header reader agrees with libvips on every clean PNG, JPEG and WebP flavour', async () => {
  const p = () => photo(97, 61, 3);
  const cases: Array<[string, Buffer]> = [
    ['png rgb', await p().png().toBuffer()],
    ['png rgba', await p().ensureAlpha(0.5).png().toBuffer()],
    ['png palette', await p().png({ palette: true }).toBuffer()],
    ['png 16-bit', await p().toColourspace('rgb16').png().toBuffer()],
    ['png interlaced', await p().png({ progressive: true }).toBuffer()],
    ['jpeg baseline', await p().jpeg().toBuffer()],
    ['jpeg progressive', await p().jpeg({ progressive: true }).toBuffer()],
    [
      'jpeg with exif orientation',
      await p()
        .jpeg()
        .withExif({ IFD0: { Copyright: 'x' } })
        .toBuffer(),
    ],
    ['jpeg grey', await p().greyscale().jpeg().toBuffer()],
    ['webp lossy', await p().webp().toBuffer()],
    ['webp lossless', await p().webp({ lossless: true }).toBuffer()],
    ['webp alpha (VP8X)', await p().ensureAlpha(0.5).webp().toBuffer()],
  ];
  for (const [name, b] of cases) {
    assert.deepEqual(quick(b), await libvipsSize(b), name);
  }
});

test('headers that carry a colour profile, GIF, and damaged headers are left to libvips', async () => {
  const withIcc = (s: sharp.Sharp) => s.withIccProfile('p3');
  const leftAlone: Array<[string, Buffer]> = [
    ['png with iCCP', await withIcc(photo(40, 30).png()).toBuffer()],
    ['jpeg with ICC_PROFILE', await withIcc(photo(40, 30).jpeg()).toBuffer()],
    ['webp with ICCP', await withIcc(photo(40, 30).webp()).toBuffer()],
    ['gif', await photo(40, 30).gif().toBuffer()],
    ['png cut inside the header', (await photo(40, 30).png().toBuffer()).subarray(0, 30)],
    ['jpeg cut before the frame', (await photo(40, 30).jpeg().toBuffer()).subarray(0, 12)],
    ['jpeg with a zero height frame', zeroHeightJpeg(await photo(40, 30).jpeg().toBuffer())],
  ];
  for (const [name, b] of leftAlone) assert.equal(quick(b), null, name);
});

/** The first SOF's height set to 0 (a DNL-style frame): libjpeg's business, not ours. */
function zeroHeightJpeg(b: Buffer): Buffer {
  const out = Buffer.from(b);
  for (let i = 2; i < out.length - 9; i++) {
    if (out[i] === 0xff && out[i + 1] === 0xc0) {
      out.writeUInt16BE(0, i + 5);
      return out;
    }
  }
  throw new Error('no SOF0');
}

test('the header reader never throws on mutated or truncated bytes', async () => {
  const seeds = [
    await photo(33, 21).png().toBuffer(),
    await photo(33, 21).jpeg().toBuffer(),
    await photo(33, 21).webp().toBuffer(),
    await photo(33, 21).webp({ lossless: true }).toBuffer(),
  ];
  let x = 12345;
  const rand = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  let answered = 0;
  for (let i = 0; i < 4000; i++) {
    const seed = seeds[i % seeds.length]!;
    const b = Buffer.from(seed.subarray(0, 1 + rand(Math.min(seed.length, 200))));
    for (let k = rand(4); k > 0; k--) b[rand(b.length)] = rand(256);
    const f = sniffImageFormat(b);
    if (!isSupportedFormat(f)) continue;
    const h = quickHeader(b, f);
    if (h) {
      answered++;
      assert.ok(Number.isInteger(h.width) && h.width > 0 && Number.isInteger(h.height) && h.height > 0);
    }
  }
  assert.ok(answered > 100, `some mutated headers are still clean (${answered})`);
});

test('a decompression bomb is still refused on its header, before any decode', async () => {
  await rejectsWith(
    resolveImage({ kind: 'bytes', data: pngBomb(60_000, 60_000) }),
    'image_too_many_pixels',
    /3600000000/,
  );
});

test('libvips in this process loads only the accepted formats: an SVG cannot be rendered even when asked directly', async () => {
  await import('../../src/images/normalize.js');
  const svg = Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>',
  );
  await assert.rejects(sharp(svg).metadata(), /unsupported image format/);
});
