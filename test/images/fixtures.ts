/** Test images made with sharp at test time: noise plus gradients, so encoders behave as on photos. */
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';

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

const CRC_TABLE = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(buf: Buffer): number {
  let c = -1;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid-looking PNG of a few hundred bytes whose header claims width x height (a decompression bomb). */
export function pngBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  // A few zero rows compressed; a real bomb would hold gigabytes of zeros in kilobytes.
  const idat = deflateSync(Buffer.alloc(4 * (width * 3 + 1)), { level: 9 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}
