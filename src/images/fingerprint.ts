/**
 * Image fingerprints: an exact hash of the normalized pixels (same pixels, any encoding, same
 * hash) and a 64-bit difference hash (dHash) that moves only a few bits under small edits.
 */
import { createHash } from 'node:crypto';

/** SHA-256 over the dimensions and raw 8-bit RGB pixels, hex. */
export function pixelSha256(pixels: Buffer, width: number, height: number, channels: number): string {
  return createHash('sha256').update(`${width}x${height}x${channels}\n`).update(pixels).digest('hex');
}

/**
 * dHash: average the image into a 9x8 grey grid, then one bit per horizontal neighbour pair
 * (left brighter than right). Each cell is averaged over at most 32x32 evenly strided samples,
 * so the cost stays well under a millisecond on the main thread whatever the image size (a
 * separate libvips pass for a 72-byte result costs more in pipeline setup than this).
 */
export function differenceHash(pixels: Buffer, width: number, height: number, channels: number): string {
  const grey = new Uint8Array(72);
  for (let cy = 0; cy < 8; cy++) {
    const y0 = Math.floor((cy * height) / 8);
    const y1 = Math.max(y0 + 1, Math.floor(((cy + 1) * height) / 8));
    const sy = Math.max(1, Math.floor((y1 - y0) / 32));
    for (let cx = 0; cx < 9; cx++) {
      const x0 = Math.floor((cx * width) / 9);
      const x1 = Math.max(x0 + 1, Math.floor(((cx + 1) * width) / 9));
      const sx = Math.max(1, Math.floor((x1 - x0) / 32));
      let sum = 0;
      let n = 0;
      for (let y = y0; y < y1 && y < height; y += sy) {
        let o = (y * width + x0) * channels;
        const step = sx * channels;
        for (let x = x0; x < x1 && x < width; x += sx, o += step) {
          // Rec. 601 luma in integer arithmetic; grey inputs use their one channel.
          sum += channels >= 3 ? (pixels[o]! * 299 + pixels[o + 1]! * 587 + pixels[o + 2]! * 114) / 1000 : pixels[o]!;
          n++;
        }
      }
      grey[cy * 9 + cx] = n ? Math.round(sum / n) : 0;
    }
  }
  return dHashFromGrey9x8(grey);
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
