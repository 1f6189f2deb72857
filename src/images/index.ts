/**
 * The image pipeline's door. Routes call resolveImages() once per request, after parsing and
 * before admission; every ImagePart gets its `resolved` field or the call throws a GlimpseError.
 *
 * FOUNDATION VERSION: decodes data URLs / base64 / uploads and fetches http(s) URLs with a size
 * cap, sniffing the format from magic bytes. The image-pipeline issue replaces the insides
 * (limits, sharp normalization, SSRF guard, fingerprints) behind this same signature.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/index.js';
import { GlimpseError, type GenerateRequest, type ImageSource, type ResolvedImage } from '../core/index.js';

const MAX_BYTES = 10 * 1024 * 1024;

export function sniffImageFormat(b: Buffer): string | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) return 'gif';
  return null;
}

const MIME: Record<string, ResolvedImage['mime']> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };

async function sourceBytes(src: ImageSource, signal?: AbortSignal): Promise<Buffer> {
  switch (src.kind) {
    case 'bytes':
      return src.data;
    case 'base64':
      return Buffer.from(src.data, 'base64');
    case 'dataUrl': {
      const m = /^data:([^;,]*)(;base64)?,(.*)$/s.exec(src.url);
      if (!m || !m[2]) throw new GlimpseError('invalid_image_url', 'Image data URLs must be base64: data:image/<type>;base64,<data>.', { param: 'image_url' });
      return Buffer.from(m[3]!, 'base64');
    }
    case 'url': {
      const res = await fetch(src.url, { signal, redirect: 'follow' }).catch((err: unknown) => {
        throw new GlimpseError('image_fetch_failed', `Could not fetch the image URL: ${(err as Error).message}.`, { param: 'image_url' });
      });
      if (!res.ok) throw new GlimpseError('image_fetch_failed', `Fetching the image URL answered HTTP ${res.status}.`, { param: 'image_url' });
      const buf = Buffer.from(await res.arrayBuffer());
      return buf;
    }
  }
}

export async function resolveImage(src: ImageSource, _config?: Config, signal?: AbortSignal): Promise<ResolvedImage> {
  const data = await sourceBytes(src, signal);
  if (data.length > MAX_BYTES) throw new GlimpseError('image_too_large', `Image is ${data.length} bytes; the limit is ${MAX_BYTES}.`, { param: 'image' });
  const format = sniffImageFormat(data);
  if (!format) throw new GlimpseError('invalid_image', 'The image could not be read: its bytes are not a known image format.', { param: 'image' });
  return {
    data,
    mime: MIME[format] ?? 'image/png',
    width: 0,
    height: 0,
    sourceFormat: format,
    sha256: createHash('sha256').update(data).digest('hex'),
  };
}

/** Resolve every image in the request in place. */
export async function resolveImages(req: GenerateRequest, config?: Config, signal?: AbortSignal): Promise<void> {
  for (const msg of req.messages) {
    for (const part of msg.content) {
      if (part.type === 'image' && !part.resolved) part.resolved = await resolveImage(part.source, config, signal);
    }
  }
}

export function toDataUrl(img: ResolvedImage): string {
  return `data:${img.mime};base64,${img.data.toString('base64')}`;
}
