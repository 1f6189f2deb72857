/**
 * Worker thread that renders one PDF's pages with MuPDF (compiled to WebAssembly), so parsing and
 * rasterizing never run on the event loop, and a pathological file can be stopped by terminating
 * the thread. Everything a limit needs (encryption, page count, page sizes) is read before the
 * first page is rendered; each page is rendered straight at its budgeted size, so no page is ever
 * rasterized larger than what the model will get.
 */
import { parentPort } from 'node:worker_threads';
import * as mupdf from 'mupdf';
import { fitToBudget, shareOf } from '../images/budget.js';
import type { RenderJob, RenderReply } from './protocol.js';

const POINTS_PER_INCH = 72;

// MuPDF writes repair warnings to stderr; a damaged file's reason reaches the client in the refusal instead.
mupdf.setLog({ error() {}, warning() {} });

class Refusal extends Error {
  constructor(
    readonly code: Extract<RenderReply, { type: 'error' }>['code'],
    message: string,
  ) {
    super(message);
  }
}

function post(reply: RenderReply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(reply, transfer);
}

function open(job: RenderJob): mupdf.Document {
  try {
    return mupdf.Document.openDocument(new Uint8Array(job.pdf), 'application/pdf');
  } catch (err) {
    throw new Refusal('invalid_document', `The PDF could not be read: ${(err as Error).message}.`);
  }
}

function render(job: RenderJob): void {
  const doc = open(job);
  try {
    if (doc.needsPassword())
      throw new Refusal('document_encrypted', 'The PDF is encrypted with a password; send it decrypted.');
    const count = doc.countPages();
    if (count < 1) throw new Refusal('invalid_document', 'The PDF has no pages.');
    if (count > job.maxPages)
      throw new Refusal(
        'too_many_pages',
        `The document has ${count} pages; the limit (documents.maxPages) is ${job.maxPages}.`,
      );
    post({ type: 'info', pages: count });
    // Every page's size is checked before any is rendered: a refusal costs no rendering.
    const bounds = [];
    for (let i = 0; i < count; i++) {
      const page = doc.loadPage(i);
      const [x0, y0, x1, y1] = page.getBounds();
      page.destroy();
      const w = x1 - x0;
      const h = y1 - y0;
      if (!(w > 0 && h > 0)) throw new Refusal('invalid_document', `Page ${i + 1} of the PDF has no area.`);
      const inches = Math.max(w, h) / POINTS_PER_INCH;
      if (inches > job.maxPageInches) {
        throw new Refusal(
          'document_page_too_large',
          `Page ${i + 1} is ${Math.round(inches)} inches on its longest side; the limit (documents.maxPageInches) is ${job.maxPageInches}.`,
        );
      }
      bounds.push({ w, h });
    }
    const share = shareOf(job.totalPixels, count, job.minPagePixels, job.maxPagePixels);
    for (let i = 0; i < count; i++) {
      const { w, h } = bounds[i];
      // The page is sized to its share in the model's grid (up to 288 dpi: 4 px per point), whatever its size in points.
      const size = fitToBudget(w * 4, h * 4, share, Math.min(share, job.minPagePixels), job.unit);
      const page = doc.loadPage(i);
      const pix = page.toPixmap(
        mupdf.Matrix.scale(size.width / w, size.height / h),
        mupdf.ColorSpace.DeviceRGB,
        false,
        true,
      );
      page.destroy();
      const rgb = packed(pix, size);
      pix.destroy();
      post({ type: 'page', index: i, width: size.width, height: size.height, rgb }, [rgb]);
    }
    post({ type: 'done' });
  } finally {
    doc.destroy();
  }
}

/**
 * The pixmap's RGB rows, cropped or padded (white) to exactly the budgeted size: MuPDF rounds
 * the transformed page box outwards, so it can be a pixel larger than asked.
 */
function packed(pix: mupdf.Pixmap, size: { width: number; height: number }): ArrayBuffer {
  const src = pix.getPixels();
  const stride = pix.getStride();
  const w = pix.getWidth();
  const h = pix.getHeight();
  const out = new Uint8Array(size.width * size.height * 3).fill(255);
  const rowBytes = Math.min(w, size.width) * 3;
  for (let y = 0; y < Math.min(h, size.height); y++)
    out.set(src.subarray(y * stride, y * stride + rowBytes), y * size.width * 3);
  return out.buffer;
}

// One document at a time, for as long as the thread lives: MuPDF's WebAssembly is compiled once per
// thread (half a second), so threads are kept between documents and ended only to stop one.
parentPort!.on('message', (job: RenderJob) => {
  try {
    render(job);
  } catch (err) {
    if (err instanceof Refusal) post({ type: 'error', code: err.code, message: err.message });
    else
      post({
        type: 'error',
        code: 'invalid_document',
        message: `The PDF could not be rendered: ${(err as Error).message}.`,
      });
  }
});
post({ type: 'ready' });
