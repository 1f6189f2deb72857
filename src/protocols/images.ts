import { GlimpseError, type ContentPart, type ImageSource } from '../core/index.js';

const BASE64_RE = /^[A-Za-z0-9+/\s]+={0,2}\s*$/;

/**
 * An image given as one string: a data URL, an http(s) URL, or bare base64.
 * Anything else (file:, ftp:, gopher:, a path) is refused before any work.
 */
export function imageSourceFromString(value: string, param: string): ImageSource {
  const s = value.trim();
  if (!s)
    throw new GlimpseError('missing_image', `'${param}' is empty: send a data URL, an http(s) URL or base64.`, {
      param,
    });
  if (/^data:/i.test(s)) return { kind: 'dataUrl', url: s };
  if (/^https?:\/\//i.test(s)) {
    try {
      new URL(s);
    } catch {
      throw new GlimpseError('invalid_image_url', `'${param}' is not a valid URL.`, { param });
    }
    return { kind: 'url', url: s };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(s) && !BASE64_RE.test(s)) {
    throw new GlimpseError(
      'invalid_image_url',
      `'${param}' must be a data URL, an http(s) URL or base64; other URL schemes are not fetched.`,
      { param },
    );
  }
  if (!BASE64_RE.test(s.slice(0, 4096))) {
    throw new GlimpseError('invalid_image_url', `'${param}' is neither a URL nor base64.`, { param });
  }
  return { kind: 'base64', data: s };
}

const OLE2 = Buffer.from([0xd0, 0xcf, 0x11, 0xe0]);
const EBML = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
// ISO media brands that are still images (AVIF, HEIF), not video.
const IMAGE_BRANDS = new Set(['avif', 'avis', 'heic', 'heix', 'heim', 'heis', 'mif1', 'msf1']);

/**
 * An uploaded file as a message part, by its first bytes: a PDF or Office file is a document, an
 * MP4/MOV/WebM/MKV a video, anything else an image (the image pipeline refuses what is none).
 */
export function uploadedPart(data: Buffer, filename?: string): ContentPart {
  const source: ImageSource = { kind: 'bytes', data, ...(filename ? { filename } : {}) };
  const head = data.subarray(0, 1024);
  if (head.includes('%PDF-') || head.subarray(0, 4).equals(OLE2) || head.readUInt32LE(0) === 0x04034b50)
    return { type: 'document', source, ...(filename ? { filename } : {}) };
  const box = data.length >= 12 ? data.toString('latin1', 4, 8) : '';
  if (
    head.subarray(0, 4).equals(EBML) ||
    ['moov', 'mdat', 'wide', 'free'].includes(box) ||
    (box === 'ftyp' && !IMAGE_BRANDS.has(data.toString('latin1', 8, 12)))
  )
    return { type: 'video', source };
  return { type: 'image', source };
}
