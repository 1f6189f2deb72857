/**
 * Decode, orient, flatten, convert and shrink one image with sharp (libvips). Every step runs on
 * libuv's threadpool, so the event loop keeps serving while an image is decoded.
 *
 * Order of work: the header is read first (format and dimensions, no pixel decode; in JavaScript
 * for clean PNG/JPEG/WebP headers, by libvips otherwise) and the pixel and aspect-ratio limits
 * checked against it, so a decompression bomb costs only its header. Only then are the
 * pixels decoded, straight into the shrunk size where the format allows (JPEG/WebP shrink-on-load).
 */
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { GlimpseError, type ImageBudget, type ImageInput, type ResolvedImage } from '../core/index.js';
import { differenceHash, pixelSha256 } from './fingerprint.js';
import { quickHeader } from './header.js';
import { isSrgbProfile } from './icc.js';
import { checkAspectRatio, checkPixels, decodeTimedOut, type ImageSettings } from './limits.js';
import { fitToGrid } from './budget.js';
import type { SupportedFormat } from './sniff.js';

// The operation cache only helps when the same image is processed twice in a row; for a server
// receiving distinct images it just holds memory.
sharp.cache(false);

// libvips picks a loader by sniffing the bytes itself. Only the loaders for the formats glimpse
// accepts may run in this process: no SVG, PDF or other loader can ever be reached with client
// bytes, whatever they contain (our own sniff already refuses them; this is the second lock).
sharp.block({ operation: ['VipsForeignLoad'] });
sharp.unblock({
  operation: [
    'VipsForeignLoadJpeg',
    'VipsForeignLoadPng',
    'VipsForeignLoadWebp',
    'VipsForeignLoadNsgif',
    'VipsForeignLoadHeif',
    'VipsForeignLoadTiff',
  ],
});

const MIME: Record<ImageSettings['outputFormat'], ResolvedImage['mime']> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
};

// Refuse truncated or corrupt data, but tolerate the harmless warnings real-world JPEGs carry.
const FAIL_ON = 'truncated' as const;

function invalidImage(format: string, cause: unknown): GlimpseError {
  return new GlimpseError(
    'invalid_image',
    `The image could not be read: its bytes look like ${format.toUpperCase()} but are damaged or incomplete.`,
    { param: 'image', cause },
  );
}

export interface NormalizeOptions {
  settings: ImageSettings;
  /** Override settings.maxEdge (model profiles with their own input size, e.g. 448). */
  maxEdge?: number;
  /** Sides become multiples of this (the model's processor grid, 28 for GLM-V), within maxEdge. */
  grid?: number;
  /** The request's min_pixels / max_pixels, within maxEdge (on `grid`, else images.patchMultiple). */
  budget?: ImageBudget;
  /**
   * What the engine reads: 'pixels' keeps the decoded RGB and skips the encode; 'encoded' (the
   * default) encodes and lets the pixels go, so a queued request holds kilobytes, not megabytes.
   */
  output?: ImageInput;
}

/** The libvips loader each sniffed format must also get (AVIF is read by the HEIF loader). */
const LOADER: Record<SupportedFormat, string> = {
  jpeg: 'jpeg',
  png: 'png',
  webp: 'webp',
  gif: 'gif',
  avif: 'heif',
  tiff: 'tiff',
};

/** Header only: dimensions (one page of a multi-page image) and whether its colour profile is sRGB, without decoding pixels. */
export async function readHeader(
  data: Buffer,
  format: SupportedFormat,
): Promise<{ width: number; height: number; srgbProfile: boolean }> {
  let meta: Metadata;
  try {
    meta = await sharp(data, { failOn: 'none', limitInputPixels: false }).metadata();
  } catch (err) {
    throw invalidImage(format, err);
  }
  // Defence in depth: libvips sniffs on its own; if it would pick another loader than the one our
  // sniff allowed (say, a vector or document loader), the bytes are refused rather than rendered.
  if (meta.format !== LOADER[format])
    throw invalidImage(format, new Error(`libvips reads these bytes as ${meta.format}`));
  if (!meta.width || !meta.height) throw invalidImage(format, new Error('no dimensions in header'));
  // Multi-page images (animated GIF/WebP, TIFF) report one page's height when pageHeight is set.
  const height = meta.pageHeight && meta.pages && meta.pages > 1 ? meta.pageHeight : meta.height;
  return { width: meta.width, height, srgbProfile: isSrgbProfile(meta.icc) };
}

export async function normalizeImage(
  data: Buffer,
  format: SupportedFormat,
  opts: NormalizeOptions,
): Promise<ResolvedImage> {
  const s = opts.settings;
  // Clean PNG/JPEG/WebP headers without a colour profile are read here; the rest by libvips.
  const quick = quickHeader(data, format);
  const {
    width: srcW,
    height: srcH,
    srgbProfile,
  } = quick ? { ...quick, srgbProfile: false } : await readHeader(data, format);
  checkPixels(srcW, srcH, s);
  checkAspectRatio(srcW, srcH, s);

  const maxEdge = opts.maxEdge ?? s.maxEdge;
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(data, {
      failOn: FAIL_ON,
      limitInputPixels: s.maxPixels,
      sequentialRead: true,
      pages: 1,
      page: 0,
      ignoreIcc: srgbProfile,
    })
      .autoOrient()
      .resize({ width: maxEdge, height: maxEdge, fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .timeout({ seconds: s.decodeTimeoutSeconds })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    // sharp's timeout kills the libvips pipeline and rejects with "timeout: NN% complete".
    if (s.decodeTimeoutSeconds > 0 && /^timeout\b/i.test((err as Error)?.message ?? '')) throw decodeTimedOut(s, err);
    throw invalidImage(format, err);
  }
  const { width, height, channels } = raw.info;
  if (channels !== 3) throw invalidImage(format, new Error(`unexpected ${channels} channels after normalization`));
  // Boxes the model draws are given back in the client's own pixels, so the size as sent is kept.
  const original = uprightSize(srcW, srcH, width, height);
  // A request's own bounds are in the model's unit too: the profile's grid, else the configured one.
  const unit = opts.grid ?? (opts.budget ? s.patchMultiple : undefined);
  if (unit) {
    // A second pass on the oriented pixels: only after autoOrient are the sides known to be the
    // image's own (an EXIF-rotated JPEG's header gives them swapped). Without a request's
    // bounds at most one grid cell moves; with them, the image takes the size they ask for.
    const to = fitToGrid(width, height, maxEdge, unit, opts.budget);
    if (to.width !== width || to.height !== height) {
      const pixels = await sharp(raw.data, { raw: { width, height, channels: 3 } })
        .resize({ width: to.width, height: to.height, fit: 'fill' })
        .raw()
        .toBuffer();
      return { ...(await fromPixels(pixels, to.width, to.height, format, s, opts.output)), original };
    }
  }
  return { ...(await fromPixels(raw.data, width, height, format, s, opts.output)), original };
}

/**
 * The header's size as it shows after EXIF rotation: the header gives it as stored, the shrink
 * kept the aspect ratio, so the sides are swapped when the shrunk image is the other way round.
 */
function uprightSize(srcW: number, srcH: number, w: number, h: number): { width: number; height: number } {
  const asStored = Math.abs(w / h - srcW / srcH);
  const turned = Math.abs(w / h - srcH / srcW);
  return turned < asStored ? { width: srcH, height: srcW } : { width: srcW, height: srcH };
}

/**
 * A resolved image from normalized 8-bit RGB pixels (a decoded image, a rendered page, a video
 * frame): fingerprinted, and encoded only for engines that take bytes.
 */
export async function fromPixels(
  rgb: Buffer,
  width: number,
  height: number,
  sourceFormat: string,
  s: ImageSettings,
  output?: ImageInput,
): Promise<ResolvedImage> {
  // The encode (only for engines that take bytes) runs on the threadpool while the main thread hashes.
  const pending = output === 'pixels' ? undefined : encodePixels(rgb, width, height, s);
  const phash = differenceHash(rgb, width, height, 3);
  const sha256 = pixelSha256(rgb, width, height, 3);
  const base = { width, height, sourceFormat, sha256, phash };
  if (!pending) return { ...base, rgb: { data: rgb, width, height } };
  let out: Buffer;
  try {
    out = await pending;
  } catch (err) {
    throw invalidImage(sourceFormat, err);
  }
  return { ...base, data: out, mime: MIME[s.outputFormat] };
}

/** Encode normalized 8-bit RGB pixels in the configured output format. */
export function encodePixels(pixels: Buffer, width: number, height: number, s: ImageSettings): Promise<Buffer> {
  const encoder = sharp(pixels, { raw: { width, height, channels: 3 } });
  const encoded =
    s.outputFormat === 'png'
      ? encoder.png({ compressionLevel: 6 })
      : s.outputFormat === 'webp'
        ? encoder.webp({ quality: s.outputQuality })
        : // Huffman optimisation would cost twice the encode time for ~5% fewer bytes on an internal handoff.
          encoder.jpeg({ quality: s.outputQuality, optimiseCoding: false });
  return encoded.toBuffer();
}
