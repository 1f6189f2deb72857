/**
 * Documents for the image pipeline: each document part of a request becomes its pages, in order,
 * each a `Page N of M` text part and an image part already resolved, so every engine gets the
 * same pages (pixels for in-process engines, encoded images for the others) and no engine knows
 * documents exist. PDFs are rendered with MuPDF on worker threads; Office files go through
 * LibreOffice to PDF first.
 */
import type { Config } from '../config/index.js';
import {
  GlimpseError,
  type ContentPart,
  type DocumentPart,
  type GenerateRequest,
  type ImageInput,
  type MediaOrigin,
} from '../core/index.js';
import { fromPixels, imageSettings, sourceBytes, thumbnailUrl } from '../images/index.js';
import { officeToPdf } from './office.js';
import { renderPdf, type DocumentSettings } from './render.js';
import { sniffDocument } from './sniff.js';

export { renderPdf, type DocumentSettings, type RenderedPage } from './render.js';
export { findProgram } from './programs.js';

/** What the budget did to one document, for the page to show ("12 pages, shown at 896 px"). */
export interface DocumentSummary {
  pages: number;
  width: number;
  height: number;
}

/** The bytes of a document or video source, within `maxBytes`, the refusal worded for `noun`. */
export async function mediaBytes(
  part: { source: DocumentPart['source'] },
  config: Pick<Config, 'images'>,
  limit: { maxBytes: number; setting: string; noun: string; code: 'document_too_large' | 'video_too_large' },
  signal?: AbortSignal,
): Promise<Buffer> {
  const s = imageSettings(config);
  // The image fetcher and decoders, with this kind's byte limit in place of the image one.
  const limits = { ...s, maxBytes: limit.maxBytes, maxBase64Length: Math.ceil(limit.maxBytes / 3) * 4 + 4 };
  try {
    const data = await sourceBytes(part.source, limits, {}, signal);
    if (data.length > limit.maxBytes) throw new GlimpseError('image_too_large', '');
    if (data.length === 0)
      throw new GlimpseError(
        limit.code === 'video_too_large' ? 'invalid_video' : 'invalid_document',
        `The ${limit.noun} is empty (0 bytes).`,
        { param: 'file' },
      );
    return data;
  } catch (err) {
    if (err instanceof GlimpseError && (err.code === 'image_too_large' || err.code === 'base64_too_long')) {
      throw new GlimpseError(
        limit.code,
        `The ${limit.noun} is larger than the limit (${limit.setting}) of ${limit.maxBytes} bytes.`,
        { param: 'file', cause: err },
      );
    }
    throw err;
  }
}

/** The PDF of a document's bytes: itself, or LibreOffice's conversion of an Office file. */
async function asPdf(data: Buffer, s: DocumentSettings, signal?: AbortSignal): Promise<Buffer> {
  return sniffDocument(data, s.maxUnpackedBytes) === 'pdf' ? data : officeToPdf(data, s, signal);
}

/** One document's parts: per page a marker and the page as a resolved image. */
async function documentParts(
  part: DocumentPart,
  config: Pick<Config, 'images' | 'documents'>,
  output: ImageInput,
  thumbnails: boolean,
  signal?: AbortSignal,
): Promise<{ parts: ContentPart[]; summary: DocumentSummary }> {
  const s = config.documents;
  const data = await mediaBytes(
    part,
    config,
    { maxBytes: s.maxBytes, setting: 'documents.maxBytes', noun: 'document', code: 'document_too_large' },
    signal,
  );
  const pdf = await asPdf(data, s, signal);
  const images = imageSettings(config);
  const pages = await renderPdf(pdf, s, images.patchMultiple, signal);
  const [resolved, views] = await Promise.all([
    Promise.all(pages.map((p) => fromPixels(p.rgb, p.width, p.height, 'pdf', images, output))),
    thumbnails ? Promise.all(pages.map((p) => thumbnailUrl(p.rgb, p.width, p.height))) : undefined,
  ]);
  const from: MediaOrigin = {
    kind: 'document',
    count: pages.length,
    ...(part.filename ? { filename: part.filename } : {}),
    ...(views ? { thumbnails: views } : {}),
  };
  const parts: ContentPart[] = resolved.flatMap((img, i): ContentPart[] => [
    { type: 'text', text: `Page ${i + 1} of ${resolved.length}` },
    { type: 'image', source: { kind: 'bytes', data: Buffer.alloc(0), filename: part.filename }, resolved: img, from },
  ]);
  return { parts, summary: { pages: pages.length, width: pages[0].width, height: pages[0].height } };
}

/**
 * Replace every document part of the request with its pages, documents rendered concurrently
 * (within documents.maxConcurrentRenders); the first refusal cancels the rest.
 */
export async function expandDocuments(
  req: GenerateRequest,
  config: Pick<Config, 'images' | 'documents'>,
  output: ImageInput,
  signal?: AbortSignal,
  thumbnails = false,
): Promise<DocumentSummary[]> {
  const found = req.messages.flatMap((m) =>
    m.content.filter((p): p is DocumentPart => p.type === 'document').map((part) => ({ m, part })),
  );
  if (!found.length) return [];
  const group = new AbortController();
  const groupSignal = signal ? AbortSignal.any([signal, group.signal]) : group.signal;
  let done: Array<{ parts: ContentPart[]; summary: DocumentSummary }>;
  try {
    done = await Promise.all(found.map(({ part }) => documentParts(part, config, output, thumbnails, groupSignal)));
  } catch (err) {
    group.abort();
    throw err;
  }
  found.forEach(({ m, part }, i) => {
    const at = m.content.indexOf(part);
    m.content.splice(at, 1, ...done[i].parts);
  });
  return done.map((d) => d.summary);
}
