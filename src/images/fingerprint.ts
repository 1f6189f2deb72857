/**
 * Image fingerprints: an exact hash of the normalized pixels (same pixels, any encoding, same
 * hash) and a 64-bit difference hash (dHash) that moves only a few bits under small edits.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';

/** SHA-256 over the dimensions and raw 8-bit RGB pixels, hex. */
export function pixelSha256(pixels: Buffer, width: number, height: number, channels: number): string {
  return createHash('sha256').update(`${width}x${height}x${channels}\n`).update(pixels).digest('hex');
}

/**
 * dHash: shrink to 9x8 grey, then one bit per horizontal neighbour pair (left brighter than
 * right). The shrink runs in libvips; the JS part touches only 72 bytes.
 */
export async function differenceHash(pixels: Buffer, width: number, height: number, channels: 1 | 2 | 3 | 4): Promise<string> {
  const tiny = await sharp(pixels, { raw: { width, height, channels } })
    .greyscale()
    .resize(9, 8, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  return dHashFromGrey9x8(tiny);
}

/** The 16-hex-digit hash of a 9x8 grey buffer (row-major, one byte per pixel). */
export function dHashFromGrey9x8(grey: Uint8Array): string {
  if (grey.length < 72) throw new RangeError('dHash needs a 9x8 grey buffer');
  let hi = 0;
  let lo = 0;
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      const bit = grey[y * 9 + x]! > grey[y * 9 + x + 1]! ? 1 : 0;
      const i = y * 8 + x;
      if (i < 32) hi = (hi << 1) | bit;
      else lo = (lo << 1) | bit;
    }
  }
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let v = i; v; v >>= 1) n += v & 1;
  return n;
});

/** Bits that differ between two 16-hex-digit hashes (0..64). */
export function hammingDistance(a: string, b: string): number {
  if (a.length !== 16 || b.length !== 16) throw new RangeError('perceptual hashes are 16 hex digits');
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  let d = 0;
  for (let i = 0; i < 8; i++) d += POPCOUNT[x[i]! ^ y[i]!]!;
  return d;
}
