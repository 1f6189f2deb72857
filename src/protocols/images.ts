import { GlimpseError, type ImageSource } from '../core/index.js';

const BASE64_RE = /^[A-Za-z0-9+/\s]+={0,2}\s*$/;

/**
 * An image given as one string: a data URL, an http(s) URL, or bare base64.
 * Anything else (file:, ftp:, gopher:, a path) is refused before any work.
 */
export function imageSourceFromString(value: string, param: string): ImageSource {
  const s = value.trim();
  if (!s) throw new GlimpseError('missing_image', `'${param}' is empty: send a data URL, an http(s) URL or base64.`, { param });
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
    throw new GlimpseError('invalid_image_url', `'${param}' must be a data URL, an http(s) URL or base64; other URL schemes are not fetched.`, { param });
  }
  if (!BASE64_RE.test(s.slice(0, 4096))) {
    throw new GlimpseError('invalid_image_url', `'${param}' is neither a URL nor base64.`, { param });
  }
  return { kind: 'base64', data: s };
}

