/** Test images made with sharp at test time: noise plus gradients, so encoders behave as on photos. */
import { createDeflate, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import assert from 'node:assert/strict';
import { isGlimpseError } from '../../src/core/index.js';
import { pngOf, rgbPng } from '../../src/images/png.js';

/** Deterministic pseudo-random RGB pixels with a gradient underneath. */
export function photoPixels(width: number, height: number, seed = 1, channels = 3): Buffer {
  const buf = Buffer.alloc(width * height * channels);
  let x = seed >>> 0 || 1;
  const sx = Float64Array.from({ length: width }, (_, i) => 60 * Math.sin((i / width) * 7 + seed));
  const cy = Float64Array.from({ length: height }, (_, y) => Math.cos((y / height) * 5 + seed / 3));
  const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v | 0);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const noise = (x >>> 0) % 48;
      // broad waves give the picture structure at every scale (perceptual hashes need some)
      const wave = sx[i]! * cy[y]!;
      const o = (y * width + i) * channels;
      buf[o] = clamp((i / width) * 140 + wave + noise);
      if (channels > 1) buf[o + 1] = clamp((y / height) * 140 - wave + noise);
      if (channels > 2) buf[o + 2] = clamp(100 + wave + noise);
      if (channels > 3) buf[o + 3] = 255;
    }
  }
  return buf;
}

export function photo(width: number, height: number, seed = 1) {
  return sharp(photoPixels(width, height, seed), { raw: { width, height, channels: 3 } });
}

export const jpeg = (w: number, h: number, seed = 1) => photo(w, h, seed).jpeg({ quality: 90 }).toBuffer();
export const png = (w: number, h: number, seed = 1) => photo(w, h, seed).png().toBuffer();

/** A valid-looking PNG of a few hundred bytes whose header claims width x height (a decompression bomb). */
export function pngBomb(width: number, height: number): Buffer {
  // A few zero rows compressed; a real bomb would hold gigabytes of zeros in kilobytes.
  return rgbPng(width, height, deflateSync(Buffer.alloc(4 * (width * 3 + 1)), { level: 9 }));
}

/**
 * A real, complete PNG that is slow to decode: side x side 16-bit RGBA (8 bytes a pixel through
 * inflate, 16-to-8-bit conversion and flattening). 14000 x 14000 is 6.5 MiB and takes libvips
 * about 3 s on one core of the 2-core dev machine; building it takes under a second.
 */
export async function slowPng(side: number): Promise<Buffer> {
  const deflate = createDeflate({ level: 1 });
  const parts: Buffer[] = [];
  deflate.on('data', (c: Buffer) => parts.push(c));
  const ended = new Promise((resolve) => deflate.on('end', resolve));
  // Every scanline is filter byte 0 and zero samples: all zeros, written in 8 MiB blocks.
  const block = Buffer.alloc(8 << 20);
  for (let left = side * (1 + side * 8); left > 0; left -= block.length) {
    if (!deflate.write(left >= block.length ? block : block.subarray(0, left)))
      await new Promise((resolve) => deflate.once('drain', resolve));
  }
  deflate.end();
  await ended;
  return pngOf(side, side, Buffer.concat(parts), { bitDepth: 16, colourType: 6 });
}

/** Assert that `p` rejects with a GlimpseError of this code (and a message matching `re`). */
export const rejectsWith = (p: Promise<unknown>, code: string, re?: RegExp) =>
  assert.rejects(p, (err: unknown) => {
    assert.ok(isGlimpseError(err), `expected a GlimpseError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    return true;
  });
