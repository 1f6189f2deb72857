/**
 * Images are checked and resized in the browser before upload, to the same bound glimpse applies
 * (longest edge <= imageMaxEdge). Uploads stay small and the size shown under each preview is
 * exactly what the model will see.
 */
import type { UiConfig } from './client';

export interface Attachment {
  id: string;
  name: string;
  /** data: URL of the bytes that will be sent. */
  dataUrl: string;
  mime: string;
  width: number;
  height: number;
  bytes: number;
  originalWidth: number;
  originalHeight: number;
  originalBytes: number;
  /** A PDF or a video, sent whole (sizes are 0); absent for an image. */
  kind?: 'document' | 'video';
  /** What the server made of a PDF or video (its `glimpse_media` entry), once it has answered. */
  rendered?: RenderedMedia;
}

/** A document's pages or a video's frames as the server rendered them for the model. */
export interface RenderedMedia {
  count: number;
  width: number;
  height: number;
  /** Frames per second sampled (videos). */
  fps?: number;
  /** Small views of each page or frame, in order. */
  thumbnails: string[];
}

export type RejectReason = 'not_image' | 'file_too_big' | 'unreadable' | 'too_many_pixels' | 'encoded_too_big';

export class ImageRejected extends Error {
  constructor(
    readonly reason: RejectReason,
    readonly fileName: string,
    readonly detail: Record<string, number> = {},
  ) {
    super(reason);
  }
}

const ACCEPTED = /^image\/(png|jpe?g|webp|gif|bmp|avif|heic|heif)$/i;
const MAX_PIXELS = 100_000_000;

export function fitWithin(width: number, height: number, maxEdge: number): { width: number; height: number } {
  const longest = Math.max(width, height);
  if (longest <= maxEdge) return { width, height };
  const scale = maxEdge / longest;
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

export function readAsDataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error ?? new Error('read failed'));
    r.readAsDataURL(blob);
  });
}

function canvasToBlob(canvas: HTMLCanvasElement, type: string, quality?: number): Promise<Blob> {
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('encode failed'))), type, quality),
  );
}

let seq = 0;
function newId(): string {
  seq += 1;
  return `img-${Date.now().toString(36)}-${seq}`;
}

export async function prepareImage(file: File, cfg: UiConfig): Promise<Attachment> {
  const name = file.name || 'image';
  // The type is what the browser guessed from the name or clipboard; an empty type still gets a decode attempt.
  if (file.type && !ACCEPTED.test(file.type)) throw new ImageRejected('not_image', name);
  if (file.size > cfg.maxFileBytes)
    throw new ImageRejected('file_too_big', name, { bytes: file.size, limit: cfg.maxFileBytes });
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    throw new ImageRejected(file.type ? 'unreadable' : 'not_image', name);
  }
  try {
    const ow = bitmap.width;
    const oh = bitmap.height;
    if (ow * oh > MAX_PIXELS) throw new ImageRejected('too_many_pixels', name, { width: ow, height: oh });
    const { width, height } = fitWithin(ow, oh, cfg.imageMaxEdge);
    const sendAsIs =
      width === ow && height === oh && /^image\/(png|jpeg|webp)$/.test(file.type) && file.size <= cfg.imageMaxBytes;
    let blob: Blob = file;
    if (!sendAsIs) {
      const canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      const ctx = canvas.getContext('2d');
      if (!ctx) throw new ImageRejected('unreadable', name);
      const keepAlpha = file.type === 'image/png' || file.type === 'image/webp' || file.type === 'image/gif';
      if (!keepAlpha) {
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, width, height);
      }
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(bitmap, 0, 0, width, height);
      blob = keepAlpha ? await canvasToBlob(canvas, 'image/png') : await canvasToBlob(canvas, 'image/jpeg', 0.9);
      // A photo saved as PNG can stay huge: JPEG is the honest fallback.
      if (blob.size > cfg.imageMaxBytes / 2 && keepAlpha) {
        ctx.globalCompositeOperation = 'destination-over';
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, width, height);
        blob = await canvasToBlob(canvas, 'image/jpeg', 0.9);
      }
    }
    if (blob.size > cfg.imageMaxBytes)
      throw new ImageRejected('encoded_too_big', name, { bytes: blob.size, limit: cfg.imageMaxBytes });
    return {
      id: newId(),
      name,
      dataUrl: await readAsDataUrl(blob),
      mime: blob.type || file.type,
      width,
      height,
      bytes: blob.size,
      originalWidth: ow,
      originalHeight: oh,
      originalBytes: file.size,
    };
  } finally {
    bitmap.close();
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
