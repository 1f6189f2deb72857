/**
 * A minimal PNG writer for 8-bit RGB images, with no image library: glimpse's own synthetic images
 * (the embedded engine's warm-up) and test images whose header must say exactly what we choose.
 */
import { deflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/**
 * A PNG whose header says width x height, around an already-deflated IDAT stream (scanlines each
 * prefixed by a filter byte). The IDAT need not hold that many rows. Colour type 2 is RGB, 6 RGBA.
 */
export function pngOf(
  width: number,
  height: number,
  idat: Buffer,
  { bitDepth = 8, colourType = 2 }: { bitDepth?: 8 | 16; colourType?: 2 | 6 } = {},
): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colourType;
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

/** An 8-bit RGB PNG around an already-deflated IDAT stream (see pngOf). */
export const rgbPng = (width: number, height: number, idat: Buffer): Buffer => pngOf(width, height, idat);

/** A solid-colour PNG. */
export function solidPng(width: number, height: number, rgb: [number, number, number] = [127, 127, 127]): Buffer {
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x++) row.set(rgb, 1 + x * 3);
  return rgbPng(width, height, deflateSync(Buffer.concat(Array.from({ length: height }, () => row))));
}
