/**
 * Image format sniffing from magic bytes. The format a client claims (a data URL's mime type, a
 * Content-Type header, a file name) is never trusted: only these bytes decide.
 */

/** Formats glimpse decodes (libvips reads all of them from the bundled build). */
export const SUPPORTED_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'avif', 'tiff'] as const;
export type SupportedFormat = (typeof SUPPORTED_FORMATS)[number];

/** Formats recognised but refused with 415, because the bundled libvips cannot read them or they are unsafe to render. */
export const UNSUPPORTED_FORMATS = ['bmp', 'heic', 'svg', 'jxl', 'ico', 'pdf'] as const;

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JXL_CONTAINER = Buffer.from([0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a]);
const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'msf1']);
const BMP_DIB_SIZES = new Set([12, 40, 52, 56, 64, 108, 124]);

/** ISO-BMFF 'ftyp' box: major brand plus compatible brands decide AVIF versus HEIC. */
function sniffFtyp(b: Buffer): 'avif' | 'heic' | null {
  if (b.length < 16 || b.toString('latin1', 4, 8) !== 'ftyp') return null;
  const boxSize = b.readUInt32BE(0);
  const end = Math.min(b.length, boxSize >= 16 ? boxSize : 16, 256);
  const brands = [b.toString('latin1', 8, 12)];
  for (let off = 16; off + 4 <= end; off += 4) brands.push(b.toString('latin1', off, off + 4));
  if (brands.some((x) => AVIF_BRANDS.has(x))) return 'avif';
  if (brands.some((x) => HEIC_BRANDS.has(x))) return 'heic';
  return null;
}

function looksLikeSvg(b: Buffer): boolean {
  let head = b.toString('utf8', 0, Math.min(b.length, 512));
  if (head.charCodeAt(0) === 0xfeff) head = head.slice(1);
  head = head.trimStart();
  return (
    head.startsWith('<svg') ||
    (head.startsWith('<?xml') && head.includes('<svg')) ||
    (head.startsWith('<!') && head.includes('<svg'))
  );
}

/**
 * The image format of these bytes: one of SUPPORTED_FORMATS, one of UNSUPPORTED_FORMATS, or
 * null when the bytes are not a known image at all.
 */
export function sniffImageFormat(b: Buffer): string | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b.subarray(0, 8).equals(PNG_MAGIC)) return 'png';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a'))
    return 'gif';
  const ftyp = sniffFtyp(b);
  if (ftyp) return ftyp;
  if (
    b.length >= 4 &&
    ((b[0] === 0x49 && b[1] === 0x49 && (b[2] === 0x2a || b[2] === 0x2b) && b[3] === 0) ||
      (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && (b[3] === 0x2a || b[3] === 0x2b)))
  )
    return 'tiff';
  if (b.length >= 18 && b[0] === 0x42 && b[1] === 0x4d && BMP_DIB_SIZES.has(b.readUInt32LE(14))) return 'bmp';
  if ((b.length >= 2 && b[0] === 0xff && b[1] === 0x0a) || (b.length >= 12 && b.subarray(0, 12).equals(JXL_CONTAINER)))
    return 'jxl';
  if (b.length >= 6 && b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0 && b.readUInt16LE(4) > 0) return 'ico';
  if (b.length >= 5 && b.toString('latin1', 0, 5) === '%PDF-') return 'pdf';
  if (looksLikeSvg(b)) return 'svg';
  return null;
}

export function isSupportedFormat(format: string | null): format is SupportedFormat {
  return format !== null && (SUPPORTED_FORMATS as readonly string[]).includes(format);
}
