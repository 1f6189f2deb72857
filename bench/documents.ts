/**
 * Documents and video, glimpse against the command-line tools doing the same work, in one run:
 *   pages/s rendered: glimpse (MuPDF on a worker thread) vs poppler's pdftoppm at the same DPI
 *     (150, RGB out), and glimpse at its default GLM-V page budget;
 *   frames/s sampled: glimpse (ffprobe + one ffmpeg pass, GLM-4.6V's rule, frames fingerprinted)
 *     vs the ffmpeg command line extracting the same frames at the same size.
 * Prints a table and writes JSON to bench/results/. Needs pdftoppm (poppler-utils) and ffmpeg.
 * Usage: node --import tsx bench/documents.ts [--pages 40] [--video-seconds 60] [--runs 3]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { Value } from 'typebox/value';
import { ConfigSchema, type Config } from '../src/config/index.js';
import { renderPdf } from '../src/documents/index.js';
import { resolveImages } from '../src/images/index.js';
import { fitToBudget, shareOf } from '../src/images/budget.js';
import { sampleTimes } from '../src/video/index.js';
import type { GenerateRequest } from '../src/core/index.js';
import { makePdf } from '../test/helpers/documents.js';

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const PAGES = arg('pages', 40);
const VIDEO_SECONDS = arg('video-seconds', 60);
const RUNS = arg('runs', 3);
const DPI = 150;

const root = new URL('..', import.meta.url).pathname;
const config = Value.Default(ConfigSchema, {}) as Config;
const dir = mkdtempSync(join(tmpdir(), 'glimpse-bench-documents-'));

async function best(run: () => Promise<unknown> | unknown): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await run();
    fastest = Math.min(fastest, performance.now() - t);
  }
  return fastest;
}

const rows: Array<{ what: string; impl: string; items: number; ms: number; perSecond: number; size: string }> = [];
const row = (what: string, impl: string, items: number, ms: number, size: string) =>
  rows.push({ what, impl, items, ms: Math.round(ms), perSecond: Number(((items * 1000) / ms).toFixed(1)), size });

async function main() {
  // Pages: a text-and-rule PDF, US Letter.
  const pdf = makePdf({ pages: PAGES, text: 'The quick brown fox jumps over the lazy dog, page' });
  const pdfPath = join(dir, 'doc.pdf');
  writeFileSync(pdfPath, pdf);
  const letter = { w: (612 / 72) * DPI, h: (792 / 72) * DPI };
  const sameDpi = {
    ...config.documents,
    maxPages: 10_000,
    totalPixels: 1e12,
    maxPagePixels: Math.ceil(letter.w * letter.h),
    minPagePixels: 784,
  };
  await renderPdf(pdf, sameDpi, 1); // warm the worker thread
  let size = '';
  const glimpseMs = await best(async () => {
    const pages = await renderPdf(pdf, sameDpi, 1);
    size = `${pages[0].width}x${pages[0].height}`;
  });
  row('pages', `glimpse (MuPDF) ${DPI} dpi`, PAGES, glimpseMs, size);
  const popplerMs = await best(() => execFileSync('pdftoppm', ['-r', String(DPI), pdfPath, join(dir, 'p')]));
  row('pages', `pdftoppm ${DPI} dpi`, PAGES, popplerMs, `${Math.round(letter.w)}x${Math.round(letter.h)}`);
  const budgetMs = await best(async () => {
    const pages = await renderPdf(pdf, config.documents, config.images.patchMultiple);
    size = `${pages[0].width}x${pages[0].height}`;
  });
  row('pages', 'glimpse at the default page budget', PAGES, budgetMs, size);

  // Frames: the ffmpeg test pattern, 640x480 at 30 fps, H.264.
  const videoPath = join(dir, 'clip.mp4');
  execFileSync('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=640x480:rate=30`,
    '-t',
    String(VIDEO_SECONDS),
    '-pix_fmt',
    'yuv420p',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    videoPath,
  ]);
  const video = execFileSync('cat', [videoPath], { maxBuffer: 1 << 30 });
  const times = sampleTimes(VIDEO_SECONDS, config.video.maxFrames);
  const share = shareOf(
    config.video.totalPixels,
    times.length,
    config.documents.minPagePixels,
    config.documents.maxPagePixels,
  );
  const frame = fitToBudget(
    640,
    480,
    share,
    Math.min(share, config.documents.minPagePixels),
    config.images.patchMultiple,
  );
  const request = (): GenerateRequest => ({
    id: 'bench',
    model: 'm',
    sampling: { maxTokens: 1, temperature: 0, topP: 1, stop: [] },
    messages: [{ role: 'user', content: [{ type: 'video', source: { kind: 'bytes', data: video } }] }],
  });
  const glimpseVideoMs = await best(() => resolveImages(request(), config, undefined, { output: 'pixels' }));
  row(
    'frames',
    'glimpse (ffprobe + ffmpeg, fingerprinted)',
    times.length,
    glimpseVideoMs,
    `${frame.width}x${frame.height}`,
  );
  const ffmpegMs = await best(() =>
    spawnSync(
      'ffmpeg',
      [
        '-v',
        'error',
        '-i',
        videoPath,
        '-an',
        '-vf',
        `fps=${times.length}/${VIDEO_SECONDS}:round=near,scale=${frame.width}:${frame.height}:flags=bicubic`,
        '-frames:v',
        String(times.length),
        '-pix_fmt',
        'rgb24',
        '-f',
        'rawvideo',
        '-',
      ],
      { maxBuffer: 1 << 30 },
    ),
  );
  row('frames', 'ffmpeg command line, same sampling', times.length, ffmpegMs, `${frame.width}x${frame.height}`);

  console.log(`documents and video, best of ${RUNS}, ${cpus().length} cores, load ${loadavg()[0].toFixed(1)}`);
  console.table(rows);
  const outDir = join(root, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `documents-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        bench: 'documents',
        date: new Date().toISOString(),
        cores: cpus().length,
        pages: PAGES,
        dpi: DPI,
        videoSeconds: VIDEO_SECONDS,
        runs: RUNS,
        rows,
        loadAverage: loadavg(),
      },
      null,
      2,
    ),
  );
  console.log(`wrote ${file}`);
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
