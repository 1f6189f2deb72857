/**
 * The image pipeline's door. Routes call resolveImages() once per request, after parsing and
 * before admission; every ImagePart gets its `resolved` field or the call throws a GlimpseError.
 *
 * Per image: take the bytes (data URL / bare base64 with the base64 length checked before
 * decoding, an upload, or an SSRF-guarded fetch) → byte limit → sniff the format from the bytes
 * → header-only pixel limit → decode, orient, flatten, sRGB 8-bit, shrink → fingerprint, and encode only for engines that
 * send bytes (in-process engines take the pixels).
 */
import type { Config } from '../config/index.js';
import {
  GlimpseError,
  type GenerateRequest,
  type ImageBudget,
  type ImageInput,
  type ImageSource,
  type ResolvedImage,
} from '../core/index.js';
import { fetchImageBytes, type FetchImageOptions } from './fetch.js';
import { expandDocuments } from '../documents/index.js';
import { expandVideos } from '../video/index.js';
import {
  checkBase64Length,
  checkEncodedBytes,
  checkImageCount,
  imageSettings,
  maxEdgeFor,
  settingsOf,
  type ImageProfile,
  type ImageSettings,
  type MediaConfig,
} from './limits.js';
import { decodeGate } from './gate.js';
import { normalizeImage } from './normalize.js';
import { isSupportedFormat, sniffImageFormat } from './sniff.js';

export { sniffImageFormat, SUPPORTED_FORMATS, UNSUPPORTED_FORMATS } from './sniff.js';
export { hammingDistance, dHashFromGrey9x8 } from './fingerprint.js';
export { fetchImageBytes, pinnedDispatcher, systemResolver, type FetchImageOptions } from './fetch.js';
export { checkDial, type CheckedDial, type DialTransport } from './dial.js';
export {
  outboundUrlProblem,
  type UrlProblem,
  addressRefusal,
  bareHost,
  domainMatches,
  firstRefusal,
  literalAddress,
  type HostResolver,
  type ResolvedAddress,
} from './ssrf.js';
export { imageSettings, maxEdgeFor, type ImageProfile, type ImageSettings } from './limits.js';
export { DecodeGate, decodeGate } from './gate.js';
export { fromPixels } from './normalize.js';
export { thumbnailUrl } from './thumbnail.js';
export { fitToBudget, fitToGrid, imageTokens, shareOf, withImageTokens, type Size } from './budget.js';

/** Options beyond the config, for callers that need them (model profiles, tests). */
export interface ResolveImageOptions {
  /** Longest edge, overriding images.maxEdge, the model's profile and the request model's images.maxEdgeByModel. */
  maxEdge?: number;
  /** The served model's profile: its image bound, and the pixel grid images are sized to. */
  profile?: ImageProfile;
  /** Image sides become multiples of this many pixels (set from the profile by resolveImages). */
  grid?: number;
  /** DNS step for URL fetches (tests inject one; production uses the system resolver). */
  resolve?: FetchImageOptions['resolve'];
  /** Test seam for URL fetches; see FetchImageOptions.dialAddress. */
  dialAddress?: FetchImageOptions['dialAddress'];
  /** Extra CA certificates (PEM) to trust for image hosts. */
  ca?: string;
  /** What the engine reads: decoded pixels (no encode) or encoded bytes (default). */
  output?: ImageInput;
  /** The engine takes video whole (an upstream pool that serves it): videos are checked and kept, not sampled. */
  keepVideo?: boolean;
  /** The request's min_pixels / max_pixels for this image (see fitToGrid). */
  budget?: ImageBudget;
}

const LOW_DETAIL_EDGE = 512;

// Base64 alphabet (standard and URL-safe), with the line breaks and spaces some encoders insert, and padding.
const BASE64_TEXT = /^[A-Za-z0-9+/_\-\s]*={0,2}$/;

function decodeBase64(text: string, s: ImageSettings): Buffer {
  checkBase64Length(text.length, s);
  const trimmed = text.trim();
  const bytes = Buffer.from(trimmed, 'base64');
  // Node skips characters outside the alphabet silently. Clean base64 decodes to exactly this many
  // bytes, so the (slower, main-thread) character check runs only when the count is off:
  // wrapped lines, or text that is not base64 at all.
  const pad = trimmed.endsWith('==') ? 2 : trimmed.endsWith('=') ? 1 : 0;
  if (bytes.length !== Math.floor((trimmed.length * 3) / 4) - pad && !BASE64_TEXT.test(trimmed)) {
    throw new GlimpseError(
      'invalid_image',
      'The image could not be read: its base64 text has characters outside the base64 alphabet.',
      { param: 'image' },
    );
  }
  return bytes;
}

// A data URL header is short ("data:image/jpeg;base64"); a long one is not a data URL we accept.
const MAX_DATA_URL_HEADER = 200;

function decodeDataUrl(url: string, s: ImageSettings): Buffer {
  const comma = url.indexOf(',', 0);
  const header = comma > 0 && comma <= MAX_DATA_URL_HEADER ? url.slice(0, comma) : '';
  if (!/^data:[\w.+-]*\/?[\w.+-]*(;[\w.+-]+=[^;,]*)*;base64$/i.test(header)) {
    throw new GlimpseError('invalid_image_url', 'Image data URLs must be base64: data:image/<type>;base64,<data>.', {
      param: 'image_url',
    });
  }
  // The declared mime type is ignored on purpose: the bytes decide the format.
  checkBase64Length(url.length - comma - 1, s);
  return decodeBase64(url.slice(comma + 1), s);
}

/** The bytes a source holds: decoded base64, an upload, or an SSRF-guarded fetch, within the byte limits of `s`. */
export async function sourceBytes(
  src: ImageSource,
  s: ImageSettings,
  opts: ResolveImageOptions,
  signal?: AbortSignal,
): Promise<Buffer> {
  switch (src.kind) {
    case 'bytes':
      if (!Buffer.isBuffer(src.data))
        throw new GlimpseError('invalid_image', 'The uploaded image has no bytes.', { param: 'image' });
      return src.data;
    case 'base64':
      if (typeof src.data !== 'string')
        throw new GlimpseError('invalid_image', 'The image base64 must be a string.', { param: 'image' });
      return decodeBase64(src.data, s);
    case 'dataUrl':
      if (typeof src.url !== 'string')
        throw new GlimpseError('invalid_image_url', 'The image URL must be a string.', { param: 'image_url' });
      return decodeDataUrl(src.url, s);
    case 'url':
      if (typeof src.url !== 'string')
        throw new GlimpseError('invalid_image_url', 'The image URL must be a string.', { param: 'image_url' });
      return fetchImageBytes(src.url, {
        settings: s,
        signal,
        resolve: opts.resolve,
        dialAddress: opts.dialAddress,
        ca: opts.ca,
      });
    default:
      throw new GlimpseError('invalid_request', 'Unknown image source.', { param: 'image' });
  }
}

/** Counters since start, for metrics. */
export interface ImageStats {
  resolved: number;
  /** Refusals by error code (invalid_image, image_too_large, image_url_forbidden, ...); cancelled images are not counted. */
  refused: Record<string, number>;
  /** Time spent normalizing resolved images (decode to encode), ms. */
  normalizeMs: number;
  /** Normalizations running and waiting at the decode gate now. */
  decoding: number;
  waiting: number;
}

const stats = { resolved: 0, refused: {} as Record<string, number>, normalizeMs: 0 };
let lastGate = decodeGate(0);

export function imageStats(): ImageStats {
  return {
    resolved: stats.resolved,
    refused: { ...stats.refused },
    normalizeMs: stats.normalizeMs,
    decoding: lastGate.active,
    waiting: lastGate.queued,
  };
}

/** Resolve one image: bytes, limits, sniff, normalize, fingerprint. Throws GlimpseError. */
export async function resolveImage(
  src: ImageSource,
  config?: Pick<Config, 'images'>,
  signal?: AbortSignal,
  opts: ResolveImageOptions = {},
): Promise<ResolvedImage> {
  try {
    const img = await resolveOne(src, imageSettings(config), signal, opts);
    stats.resolved++;
    return img;
  } catch (err) {
    // An image whose request was cancelled (client gone, or another image of it refused) was not refused itself.
    if (!signal?.aborted) {
      const code = err instanceof GlimpseError ? err.code : 'other';
      stats.refused[code] = (stats.refused[code] ?? 0) + 1;
    }
    throw err;
  }
}

async function resolveOne(
  src: ImageSource,
  s: ImageSettings,
  signal: AbortSignal | undefined,
  opts: ResolveImageOptions,
): Promise<ResolvedImage> {
  const data = await sourceBytes(src, s, opts, signal);
  checkEncodedBytes(data.length, s);
  if (data.length === 0) throw new GlimpseError('invalid_image', 'The image is empty (0 bytes).', { param: 'image' });
  const format = sniffImageFormat(data);
  if (!format)
    throw new GlimpseError('invalid_image', 'The image could not be read: its bytes are not a known image format.', {
      param: 'image',
    });
  if (!isSupportedFormat(format)) {
    throw new GlimpseError(
      'unsupported_media_type',
      `${format.toUpperCase()} images are not supported; send JPEG, PNG, WebP, GIF, AVIF or TIFF.`,
      { param: 'image' },
    );
  }
  const gate = (lastGate = decodeGate(s.maxConcurrentDecodes));
  return gate.run(async () => {
    const started = performance.now();
    const img = await normalizeImage(data, format, {
      settings: s,
      maxEdge: opts.maxEdge,
      grid: opts.grid,
      budget: opts.budget,
      output: opts.output,
    });
    stats.normalizeMs += performance.now() - started;
    return img;
  }, signal);
}

/** Every image part of the request, in order. */
function imageParts(req: GenerateRequest) {
  return req.messages.flatMap((m) => m.content).filter((p) => p.type === 'image');
}

/**
 * Resolve every image in the request in place. The image count is checked before any image is
 * touched; images are resolved concurrently and the first failure cancels the rest.
 */
export async function resolveImages(
  req: GenerateRequest,
  config?: MediaConfig,
  signal?: AbortSignal,
  opts: ResolveImageOptions = {},
): Promise<void> {
  const s = imageSettings(config);
  // The client's own images count against the image limit; pages and frames have limits of their own.
  checkImageCount(imageParts(req).filter((p) => !p.resolved).length, s);
  if (req.messages.some((m) => m.content.some((p) => p.type === 'document' || p.type === 'video'))) {
    const media = {
      images: s,
      documents: config?.documents ?? settingsOf('documents'),
      video: config?.video ?? settingsOf('video'),
    };
    const output = opts.output ?? 'encoded';
    await Promise.all([
      expandDocuments(req, media, output, signal, req.mediaThumbnails),
      expandVideos(req, media, output, opts.keepVideo ?? false, signal, req.mediaThumbnails),
    ]);
  }
  const parts = imageParts(req);
  const pending = parts.filter((p) => !p.resolved);
  if (!pending.length) return;
  const group = new AbortController();
  const groupSignal = signal ? AbortSignal.any([signal, group.signal]) : group.signal;
  // The model's profile decides the size, unless the caller already did.
  const perModel = {
    ...opts,
    maxEdge: opts.maxEdge ?? maxEdgeFor(s, req.model, opts.profile),
    grid: opts.grid ?? opts.profile?.patchGrid,
  };
  try {
    await Promise.all(
      pending.map(async (part) => {
        // OpenAI's detail 'low' is one 512 px view of the image; high and auto are the model's own size.
        const edge = part.detail === 'low' ? Math.min(LOW_DETAIL_EDGE, perModel.maxEdge) : perModel.maxEdge;
        part.resolved = await resolveImage(part.source, { images: s }, groupSignal, {
          ...perModel,
          maxEdge: edge,
          // An image's own bounds replace the request's, as a pair.
          budget: part.budget ?? req.imageBudget,
        });
      }),
    );
  } catch (err) {
    group.abort();
    throw err;
  }
}

/** The encoded image as a data URL. The image must have been resolved with output 'encoded'. */
export function toDataUrl(img: ResolvedImage): string {
  if (!img.data || !img.mime)
    throw new GlimpseError('internal_error', 'An image resolved as pixels reached an engine that needs encoded bytes.');
  return `data:${img.mime};base64,${img.data.toString('base64')}`;
}
