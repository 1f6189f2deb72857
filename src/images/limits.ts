/**
 * Every image limit, each checked in exactly one function here. Messages name the limit, the
 * setting that raises it, and the value that broke it, so a client knows what to change.
 */
import { Value } from 'typebox/value';
import { ConfigSchema, type Config } from '../config/index.js';
import { GlimpseError } from '../core/index.js';

export type ImageSettings = Config['images'];

/** The settings the image pipeline reads: images, and documents and videos where a request has them. */
export type MediaConfig = Pick<Config, 'images'> & Partial<Pick<Config, 'documents' | 'video'>>;

let defaults: Config | undefined;

/** One section's schema defaults, for callers (tests, tools) that give no config. */
export function settingsOf<K extends 'images' | 'documents' | 'video'>(key: K): Config[K] {
  defaults ??= Value.Default(ConfigSchema, {}) as Config;
  return defaults[key];
}

/** The image settings of this config, or the schema defaults when no config is given. */
export function imageSettings(config?: Pick<Config, 'images'>): ImageSettings {
  return config?.images ?? settingsOf('images');
}

/** What a loaded model's profile says about its images (the embedded engine's --model glm-ocr). */
export interface ImageProfile {
  imageMaxEdge: number;
  /** The pixel grid its processor resizes to, when it does (28 for the GLM-V / Qwen2-VL family). */
  patchGrid?: number;
}

/**
 * The longest edge images get for this model: the operator's images.maxEdgeByModel entry, else
 * images.maxEdge capped by the loaded model's profile. A cap, not a replacement: an operator's
 * --image-max-edge is never raised behind their back (a GLM-V page past its bound costs gigabytes).
 */
export function maxEdgeFor(s: ImageSettings, model: string | undefined, profile?: ImageProfile): number {
  // Own keys only: a model named "constructor" must not find Object.prototype's.
  const profiles = s.maxEdgeByModel ?? {};
  return (
    (model !== undefined && Object.hasOwn(profiles, model) ? profiles[model] : undefined) ??
    Math.min(s.maxEdge, profile?.imageMaxEdge ?? Infinity)
  );
}

export function checkImageCount(count: number, s: ImageSettings): void {
  if (count > s.maxImagesPerRequest) {
    throw new GlimpseError(
      'too_many_images',
      `The request carries ${count} images; the limit (images.maxImagesPerRequest) is ${s.maxImagesPerRequest}.`,
      { param: 'messages' },
    );
  }
}

export function checkBase64Length(length: number, s: ImageSettings): void {
  if (length > s.maxBase64Length) {
    throw new GlimpseError(
      'base64_too_long',
      `The image's base64 text is ${length} characters; the limit (images.maxBase64Length) is ${s.maxBase64Length}.`,
      { param: 'image' },
    );
  }
}

/** `partial`: the bytes are still arriving (a fetched body), so the count is a lower bound. */
export function checkEncodedBytes(bytes: number, s: ImageSettings, partial = false): void {
  if (bytes > s.maxBytes) {
    const size = partial ? `at least ${bytes}` : `${bytes}`;
    throw new GlimpseError(
      'image_too_large',
      `The image is ${size} bytes; the limit (images.maxBytes) is ${s.maxBytes}.`,
      { param: 'image' },
    );
  }
}

export function checkPixels(width: number, height: number, s: ImageSettings): void {
  const pixels = width * height;
  if (pixels > s.maxPixels) {
    throw new GlimpseError(
      'image_too_many_pixels',
      `The image is ${width}x${height} = ${pixels} pixels; the limit (images.maxPixels) is ${s.maxPixels}.`,
      { param: 'image' },
    );
  }
}

export function checkAspectRatio(width: number, height: number, s: ImageSettings): void {
  const ratio = Math.max(width, height) / Math.max(1, Math.min(width, height));
  if (ratio > s.maxAspectRatio) {
    throw new GlimpseError(
      'image_aspect_ratio_too_large',
      `The image is ${width}x${height}, an aspect ratio of ${Math.round(ratio * 10) / 10}:1; the limit (images.maxAspectRatio) is ${s.maxAspectRatio}:1.`,
      { param: 'image' },
    );
  }
}

/** Not checked up front like the others: libvips stops the decode once it has run this long. */
export function decodeTimedOut(s: ImageSettings, cause: unknown): GlimpseError {
  return new GlimpseError(
    'image_decode_timeout',
    `The image took longer than the limit (images.decodeTimeoutSeconds) of ${s.decodeTimeoutSeconds} s to decode and resize, and was stopped.`,
    { param: 'image', cause },
  );
}
