import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { dHashFromGrey9x8, hammingDistance, resolveImage } from '../../src/images/index.js';
import { photo, photoPixels } from './fixtures.js';

test('the same pixels in PNG, lossless WebP and TIFF give the same sha256 and phash', async () => {
  const encodings = [
    await photo(120, 80).png().toBuffer(),
    await photo(120, 80).webp({ lossless: true }).toBuffer(),
    await photo(120, 80).tiff({ compression: 'lzw' }).toBuffer(),
  ];
  const out = await Promise.all(encodings.map((data) => resolveImage({ kind: 'bytes', data })));
  assert.deepEqual(new Set(out.map((o) => o.sourceFormat)), new Set(['png', 'webp', 'tiff']));
  assert.equal(new Set(out.map((o) => o.sha256)).size, 1);
  assert.equal(new Set(out.map((o) => o.phash)).size, 1);
  assert.notEqual(out[0]!.phash, '0000000000000000', 'the fixture has structure for the hash to see');
});

test('a small edit changes sha256 but moves the perceptual hash only a few bits; a different image is far away', async () => {
  const w = 200;
  const h = 150;
  const base = photoPixels(w, h, 7);
  const edited = Buffer.from(base);
  for (let y = 10; y < 14; y++) for (let x = 10; x < 14; x++) edited.fill(255, (y * w + x) * 3, (y * w + x) * 3 + 3);
  // a different scene: the gradient runs the other way
  const other = photoPixels(w, h, 7).reverse();
  const [a, b, c] = await Promise.all(
    [base, edited, other].map(async (px) =>
      resolveImage({
        kind: 'bytes',
        data: await sharp(px, { raw: { width: w, height: h, channels: 3 } })
          .png()
          .toBuffer(),
      }),
    ),
  );
  assert.notEqual(a!.sha256, b!.sha256);
  assert.ok(hammingDistance(a!.phash!, b!.phash!) <= 4, `edit distance ${hammingDistance(a!.phash!, b!.phash!)}`);
  assert.ok(
    hammingDistance(a!.phash!, c!.phash!) >= 20,
    `different image distance ${hammingDistance(a!.phash!, c!.phash!)}`,
  );
});

test('a JPEG re-encode of the same photo stays within a few bits', async () => {
  const encoded = await Promise.all([
    photo(300, 200, 9).png().toBuffer(),
    photo(300, 200, 9).jpeg({ quality: 60 }).toBuffer(),
  ]);
  const [a, b] = await Promise.all(encoded.map((data) => resolveImage({ kind: 'bytes', data })));
  assert.notEqual(a!.sha256, b!.sha256);
  assert.ok(hammingDistance(a!.phash!, b!.phash!) <= 6);
});

test('dHash sets one bit per brighter-left neighbour pair, most significant first', () => {
  const grey = new Uint8Array(72);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 9; x++) grey[y * 9 + x] = 200 - x; // every left brighter
  assert.equal(dHashFromGrey9x8(grey), 'ffffffffffffffff');
  grey.fill(0);
  grey[0] = 1; // only the first pair
  assert.equal(dHashFromGrey9x8(grey), '8000000000000000');
});

test('hammingDistance counts differing bits', () => {
  assert.equal(hammingDistance('0000000000000000', '0000000000000000'), 0);
  assert.equal(hammingDistance('0000000000000000', 'ffffffffffffffff'), 64);
  assert.equal(hammingDistance('8000000000000001', '0000000000000000'), 2);
  assert.throws(() => hammingDistance('abc', '0000000000000000'), RangeError);
});
