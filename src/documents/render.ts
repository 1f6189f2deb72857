/**
 * Render a PDF's pages on a worker thread, at most documents.maxConcurrentRenders at once.
 * Threads are kept between documents (MuPDF's WebAssembly is compiled once per thread) and ended
 * when idle for a minute; a document that takes past documents.renderTimeoutSeconds, or whose
 * request is cancelled, is stopped by terminating its thread, with whatever memory MuPDF held.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { GlimpseError } from '../core/index.js';
import { startWorker } from '../core/worker-thread.js';
import { DecodeGate } from '../images/index.js';
import type { Config } from '../config/index.js';
import type { RenderJob, RenderReply } from './protocol.js';

export interface RenderedPage {
  rgb: Buffer;
  width: number;
  height: number;
}

export type DocumentSettings = Config['documents'];

const IDLE_MS = 60_000;

let gate: DecodeGate | undefined;
const idle: Array<{ worker: Worker; timer: NodeJS.Timeout }> = [];

function renderGate(s: DocumentSettings): DecodeGate {
  const limit = s.maxConcurrentRenders || Math.max(1, Math.floor(availableParallelism() / 2));
  if (gate?.limit !== limit) gate = new DecodeGate(limit);
  return gate;
}

/** A thread with MuPDF loaded: an idle one, or a new one once it says it is ready. */
function takeWorker(): Promise<Worker> {
  const kept = idle.pop();
  if (kept) {
    clearTimeout(kept.timer);
    kept.worker.ref();
    return Promise.resolve(kept.worker);
  }
  const worker = startWorker(import.meta.url, 'render-worker', { name: 'glimpse-document' });
  return new Promise((resolve, reject) => {
    worker.once('message', () => resolve(worker));
    worker.once('error', reject);
  });
}

function keepWorker(worker: Worker): void {
  // An idle thread must not keep the process alive, and goes after a quiet minute.
  worker.unref();
  const timer = setTimeout(() => {
    const at = idle.findIndex((k) => k.worker === worker);
    if (at >= 0) idle.splice(at, 1);
    void worker.terminate();
  }, IDLE_MS);
  timer.unref();
  idle.push({ worker, timer });
}

/** Every page of `pdf`, in order, at its share of the pixel budget. Throws GlimpseError. */
export function renderPdf(
  pdf: Buffer,
  s: DocumentSettings,
  unit: number,
  signal?: AbortSignal,
): Promise<RenderedPage[]> {
  const job: RenderJob = {
    pdf: pdf.buffer.slice(pdf.byteOffset, pdf.byteOffset + pdf.byteLength) as ArrayBuffer,
    maxPages: s.maxPages,
    totalPixels: s.totalPixels,
    maxPagePixels: s.maxPagePixels,
    minPagePixels: s.minPagePixels,
    maxPageInches: s.maxPageInches,
    unit,
  };
  return renderGate(s).run(async () => runJob(await takeWorker(), job, s, signal), signal);
}

function runJob(worker: Worker, job: RenderJob, s: DocumentSettings, signal?: AbortSignal): Promise<RenderedPage[]> {
  return new Promise((resolve, reject) => {
    const pages: RenderedPage[] = [];
    let settled = false;
    /** `reusable`: the thread finished its document (rendered or refused) and may take another. */
    const finish = (err: unknown, reusable: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      if (reusable) keepWorker(worker);
      else void worker.terminate();
      if (err) reject(err);
      else resolve(pages);
    };
    const timer = setTimeout(
      () =>
        finish(
          new GlimpseError(
            'document_render_timeout',
            `The document took longer than the limit (documents.renderTimeoutSeconds) of ${s.renderTimeoutSeconds} s to render, and was stopped.`,
            { param: 'file' },
          ),
          false,
        ),
      s.renderTimeoutSeconds * 1000,
    );
    const onAbort = () => finish(signal?.reason ?? new DOMException('aborted', 'AbortError'), false);
    signal?.addEventListener('abort', onAbort, { once: true });
    const onMessage = (msg: RenderReply) => {
      if (msg.type === 'page') pages.push({ rgb: Buffer.from(msg.rgb), width: msg.width, height: msg.height });
      else if (msg.type === 'done') finish(undefined, true);
      else if (msg.type === 'error') finish(new GlimpseError(msg.code, msg.message, { param: 'file' }), true);
    };
    const onError = (err: Error) =>
      finish(
        new GlimpseError('invalid_document', `The document could not be rendered: ${err.message}.`, {
          param: 'file',
          cause: err,
        }),
        false,
      );
    const onExit = () =>
      finish(
        new GlimpseError('invalid_document', 'The document renderer stopped before it finished.', { param: 'file' }),
        false,
      );
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    worker.postMessage(job, [job.pdf]);
  });
}
