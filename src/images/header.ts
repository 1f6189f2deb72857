/**
 * Dimensions (and whether a colour profile is embedded) read straight from the first bytes of a
 * PNG, JPEG or WebP, without a libvips call. Normalization needs them before it decodes: the pixel
 * and aspect-ratio limits are checked on them. Reading them here saves a round trip through the
 * threadpool per image, which is a good part of the time a small image takes.
 *
 * Only clean headers take this path: anything unusual (truncation, a marker out of place, an
 * embedded profile that must be inspected, GIF, whose decoder may grow the canvas to fit a frame)
 * returns null and libvips reads the header instead. Each reader takes the same fields the
 * decoder uses (PNG IHDR, the first JPEG SOF, WebP's VP8X canvas or bitstream header), and the
 * decode still runs with libvips' own pixel limit, so a header that lies gains nothing.
 */
import type { SupportedFormat } from './sniff.js';

export interface QuickHeader {
  width: number;
  height: number;
}

/** Width and height when the header is clean and carries no colour profile; otherwise null. */
export function quickHeader(b: Buffer, format: SupportedFormat): QuickHeader | null {
  switch (format) {
    case 'png':
      return pngHeader(b);
    case 'jpeg':
      return jpegHeader(b);
    case 'webp':
      return webpHeader(b);
    default:
      return null;
  }
}

const valid = (width: number, height: number): QuickHeader | null =>
  width > 0 && height > 0 ? { width, height } : null;

/** PNG: IHDR first; chunks walked up to the first IDAT looking for an embedded profile (iCCP). */
function pngHeader(b: Buffer): QuickHeader | null {
  if (b.length < 33 || b.readUInt32BE(8) !== 13 || b.toString('latin1', 12, 16) !== 'IHDR') return null;
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  let off = 8;
  for (let chunks = 0; chunks < 64; chunks++) {
    if (off + 8 > b.length) return null;
    const len = b.readUInt32BE(off);
    const type = b.toString('latin1', off + 4, off + 8);
    if (type === 'IDAT') return valid(width, height);
    if (type === 'iCCP') return null;
    off += 12 + len; // length, type, data, CRC
  }
  return null;
}

// Start-of-frame markers that carry the frame size (not DHT C4, JPG C8, DAC CC).
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** JPEG: marker segments walked to the first SOF; an APP2 ICC_PROFILE segment before it means a profile. */
function jpegHeader(b: Buffer): QuickHeader | null {
  let off = 2;
  for (let segments = 0; segments < 256; segments++) {
    if (off + 4 > b.length || b[off] !== 0xff) return null;
    const marker = b[off + 1]!;
    if (marker === 0xff) {
      off++; // fill byte
      continue;
    }
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      off += 2; // standalone markers carry no length
      continue;
    }
    if (marker === 0xd8 || marker === 0xd9 || marker === 0xda) return null; // a frame must come before these
    const len = b.readUInt16BE(off + 2);
    if (len < 2) return null;
    if (SOF.has(marker)) {
      if (off + 9 > b.length || len < 8) return null;
      return valid(b.readUInt16BE(off + 7), b.readUInt16BE(off + 5));
    }
    if (marker === 0xe2 && off + 16 <= b.length && b.toString('latin1', off + 4, off + 16) === 'ICC_PROFILE\0')
      return null;
    off += 2 + len;
  }
  return null;
}

/** WebP: the VP8X canvas when present (its flags say whether a profile is embedded), else the VP8 / VP8L bitstream header. */
function webpHeader(b: Buffer): QuickHeader | null {
  if (b.length < 30) return null;
  const chunk = b.toString('latin1', 12, 16);
  if (chunk === 'VP8X') {
    const flags = b[20]!;
    if (flags & 0x20) return null; // ICC profile
    return valid(1 + b.readUIntLE(24, 3), 1 + b.readUIntLE(27, 3));
  }
  if (chunk === 'VP8 ') {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return null;
    return valid(b.readUInt16LE(26) & 0x3fff, b.readUInt16LE(28) & 0x3fff);
  }
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) return null;
    const bits = b.readUInt32LE(21);
    return valid((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
  }
  return null;
}
