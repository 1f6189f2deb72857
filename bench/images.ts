/**
 * bench/images: glimpse's image normalization (decode, EXIF orient, flatten, shrink to the default
 * bound, fingerprint) against Pillow doing the same work on the same files, in one run. Two modes,
 * as the server has them: "pixels" hands the RGB over (what the in-process engine takes: the
 * issue's decode + orient + resize), "encoded" also encodes JPEG q90 (what a network engine takes).
 * Pillow does the same in each mode, minus the fingerprints. A per-file table adds Pillow's
 * decode-only time: the codec floor both sides share (libjpeg-turbo, libwebp, zlib), and from it the
 * ceiling that floor puts on any implementation's ratio to Pillow (its whole time over its decode).
 *
 *   npx tsx bench/images.ts [--seconds 5] [--max-edge 1024] [FILE ...]
 *
 * With no files it generates its own set (two 12 MP JPEG photos, one with EXIF rotation, an RGBA
 * PNG screenshot, a WebP photo); files given on the command line replace that set, to measure
 * your own images. Prints a table of images per second and writes JSON to bench/results/.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { basename, join, resolve } from 'node:path';
import { cpus, loadavg, tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { imageSettings, resolveImage } from '../src/images/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: 'string', default: '5' },
    'max-edge': { type: 'string', default: '1024' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const SECONDS = Number(values.seconds);
const MAX_EDGE = Number(values['max-edge']);
const root = new URL('..', import.meta.url).pathname;

/** Noise over gradients and waves, so JPEG/WebP sizes look like photos rather than flat fills. */
function photoPixels(width: number, height: number, seed: number): Buffer {
  const buf = Buffer.alloc(width * height * 3);
  let x = seed;
  const sx = Float64Array.from({ length: width }, (_, i) => 50 * Math.sin((i / width) * 9 + seed));
  const cy = Float64Array.from({ length: height }, (_, y) => Math.cos((y / height) * 6 + seed));
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const n = (x >>> 0) % 40;
      const w = sx[i]! * cy[y]!;
      const o = (y * width + i) * 3;
      buf[o] = Math.max(0, Math.min(255, (i / width) * 150 + w + n));
      buf[o + 1] = Math.max(0, Math.min(255, (y / height) * 150 - w + n));
      buf[o + 2] = Math.max(0, Math.min(255, 90 + w / 2 + n));
    }
  }
  return buf;
}

/** A screenshot as PNG (RGBA, like most screen captures): flat panels, a title bar and many thin dark "text" bars. */
async function screenshot(width: number, height: number): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 4, 255);
  const fill = (x0: number, y0: number, w: number, h: number, [r, g, b]: [number, number, number]) => {
    for (let y = y0; y < Math.min(height, y0 + h); y++) {
      for (let x = x0; x < Math.min(width, x0 + w); x++) {
        const o = (y * width + x) * 4;
        px[o] = r;
        px[o + 1] = g;
        px[o + 2] = b;
      }
    }
  };
  fill(0, 0, width, height, [0xf4, 0xf5, 0xf7]);
  fill(0, 0, width, 56, [0x1f, 0x6f, 0xeb]);
  fill(width - 280, 70, 260, height - 90, [0xd0, 0xd7, 0xde]);
  fill(width - 279, 71, 258, height - 92, [0xff, 0xff, 0xff]);
  for (let y = 80; y < height - 40; y += 22) {
    for (let x = 40; x < width - 300; x += 260) fill(x, y, 120 + ((x * 7 + y * 3) % 120), 10, [0x33, 0x33, 0x33]);
  }
  return sharp(px, { raw: { width, height, channels: 4 } })
    .png()
    .toBuffer();
}

async function makeSet(dir: string) {
  mkdirSync(dir, { recursive: true });
  const raw = (w: number, h: number, seed: number) =>
    sharp(photoPixels(w, h, seed), { raw: { width: w, height: h, channels: 3 } });
  const files = [
    { name: 'photo-4000x3000.jpg', data: await raw(4000, 3000, 11).jpeg({ quality: 90 }).toBuffer() },
    {
      name: 'photo-4000x3000-exif6.jpg',
      data: await raw(4000, 3000, 12).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer(),
    },
    { name: 'screenshot-2048x1152.png', data: await screenshot(2048, 1152) },
    { name: 'photo-2560x1440.webp', data: await raw(2560, 1440, 13).webp({ quality: 85 }).toBuffer() },
  ];
  return files.map((f) => {
    const path = join(dir, f.name);
    writeFileSync(path, f.data);
    return { ...f, path };
  });
}

type Mode = 'pixels' | 'encoded';

/** Images per second over `seconds` (at least `minImages`), cycling through the files, `concurrency` at a time. */
async function glimpseRate(
  files: Buffer[],
  concurrency: number,
  output: Mode,
  seconds = SECONDS,
  minImages = 0,
): Promise<{
  images: number;
  imagesPerSecond: number;
  cpuMsPerImage: number;
  eventLoopDelayMs: { p99: number; max: number };
}> {
  const config = { images: { ...imageSettings(), maxEdge: MAX_EDGE } };
  for (const data of files) await resolveImage({ kind: 'bytes', data }, config, undefined, { output }); // warm up
  let done = 0;
  let next = 0;
  // The server's claim is that image work never blocks the event loop: measure how late timers fire meanwhile.
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (done < minImages || performance.now() < deadline) {
        await resolveImage({ kind: 'bytes', data: files[next++ % files.length]! }, config, undefined, { output });
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  loop.disable();
  return {
    images: done,
    imagesPerSecond: done / elapsed,
    cpuMsPerImage: (cpu.user + cpu.system) / 1000 / done,
    eventLoopDelayMs: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
  };
}

/** bench/images_pillow.py's one line of JSON. */
function pillow<T>(paths: string[], processes: number, mode: Mode | 'perfile' | 'plain', seconds = SECONDS): T {
  const out = execFileSync(
    values.python!,
    [join(root, 'bench/images_pillow.py'), String(MAX_EDGE), String(seconds), String(processes), mode, ...paths],
    { encoding: 'utf8' },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

/** Milliseconds per image, one file at a time (at least 3, like the Pillow side). */
const glimpsePerFile = async (data: Buffer, output: Mode, seconds: number): Promise<number> =>
  1000 / (await glimpseRate([data], 1, output, seconds, 3)).imagesPerSecond;

/** The baseline needs Pillow; say how to get it rather than failing inside Python. */
function checkPillow(): void {
  try {
    execFileSync(values.python!, ['-c', 'import PIL'], { stdio: 'ignore' });
  } catch {
    console.error(
      `bench/images compares against Pillow, which ${values.python} cannot import. Install it (Debian: apt-get install python3-pil) or pass --python <interpreter with Pillow>.`,
    );
    process.exit(2);
  }
}

async function main() {
  checkPillow();
  const dir = join(tmpdir(), 'glimpse-bench-images');
  const set = positionals.length
    ? positionals.map((p) => ({ name: basename(p), path: resolve(p), data: readFileSync(p) }))
    : await makeSet(dir);
  const cores = cpus().length;
  console.log(
    `image set (${positionals.length ? 'given' : 'generated'}, ${set.length} files, bound ${MAX_EDGE}px, ${SECONDS}s per row, ${cores} cores, load average ${loadavg()[0]!.toFixed(1)}, libvips ${sharp.versions.vips}):`,
  );
  for (const f of set) {
    const m = await sharp(f.data).metadata();
    console.log(
      `  ${f.name.padEnd(36)} ${`${m.width}x${m.height} ${m.format}${m.hasAlpha ? ' alpha' : ''}${m.isProgressive ? ' progressive' : ''}`.padEnd(28)} ${(f.data.length / 1024).toFixed(0).padStart(6)} KiB`,
    );
  }

  // Per file, one at a time: where the time goes, against the codec floor.
  const perFileSeconds = Math.max(0.5, SECONDS / 4);
  const pf = pillow<{ perFile: Record<string, { pixels: number; encoded: number; decodeOnly: number }> }>(
    set.map((f) => f.path),
    1,
    'perfile',
    perFileSeconds,
  ).perFile;
  const perFile = [];
  for (const f of set) {
    const p = pf[f.path]!;
    perFile.push({
      file: f.name,
      pillowDecodeOnlyMs: p.decodeOnly,
      pillowPixelsMs: p.pixels,
      glimpsePixelsMs: await glimpsePerFile(f.data, 'pixels', perFileSeconds),
      pillowEncodedMs: p.encoded,
      glimpseEncodedMs: await glimpsePerFile(f.data, 'encoded', perFileSeconds),
    });
  }
  console.log('\nms per image, one at a time (Pillow decode only = the codec floor both share):');
  console.log(
    '| file | Pillow decode only | Pillow pixels | glimpse pixels | vs Pillow | Pillow +JPEG | glimpse +JPEG | vs Pillow |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of perFile) {
    console.log(
      `| ${r.file} | ${r.pillowDecodeOnlyMs.toFixed(1)} | ${r.pillowPixelsMs.toFixed(1)} | ${r.glimpsePixelsMs.toFixed(1)} | ${(r.pillowPixelsMs / r.glimpsePixelsMs).toFixed(2)}x | ${r.pillowEncodedMs.toFixed(1)} | ${r.glimpseEncodedMs.toFixed(1)} | ${(r.pillowEncodedMs / r.glimpseEncodedMs).toFixed(2)}x |`,
    );
  }

  // The ceiling the codecs set: any implementation must at least decode (at the shrink-on-load
  // size), and with the same libraries (libjpeg-turbo, libwebp, zlib) that costs what Pillow's
  // decode-only column shows. Even if everything after the decode were free, an implementation
  // could beat Pillow's whole work by at most (Pillow's work) / (decode alone), over this set.
  const sum = (pick: (r: (typeof perFile)[number]) => number) => perFile.reduce((a, r) => a + pick(r), 0);
  const ceiling = sum((r) => r.pillowPixelsMs) / sum((r) => r.pillowDecodeOnlyMs);
  const oneAtATime = sum((r) => r.pillowPixelsMs) / sum((r) => r.glimpsePixelsMs);
  console.log(
    `ceiling: on this set Pillow's decode alone is ${((100 * sum((r) => r.pillowDecodeOnlyMs)) / sum((r) => r.pillowPixelsMs)).toFixed(0)}% of its whole pixels work, so decoding with the same codecs caps any implementation at ${ceiling.toFixed(2)}x Pillow's rate (nothing but the decode); glimpse, one at a time: ${oneAtATime.toFixed(2)}x`,
  );

  const rows: Array<{
    impl: string;
    mode: Mode;
    parallel: number;
    images: number;
    imagesPerSecond: number;
    cpuMsPerImage: number;
    eventLoopDelayMs?: { p99: number; max: number };
  }> = [];
  for (const mode of ['pixels', 'encoded'] as const) {
    for (const parallel of [1, cores]) {
      const p = pillow<{ images: number; imagesPerSecond: number; cpuMsPerImage: number; pillow: string }>(
        set.map((f) => f.path),
        parallel,
        mode,
      );
      rows.push({
        impl: `Pillow ${p.pillow}`,
        mode,
        parallel,
        images: p.images,
        imagesPerSecond: p.imagesPerSecond,
        cpuMsPerImage: p.cpuMsPerImage,
      });
      const g = await glimpseRate(
        set.map((f) => f.data),
        parallel,
        mode,
      );
      rows.push({ impl: `glimpse (sharp ${sharp.versions.sharp})`, mode, parallel, ...g });
    }
  }

  // Wall-clock rates swing with whatever else runs on the machine; CPU time per image barely does.
  // Event loop: how late a 1 ms timer fired while glimpse worked (Pillow has no event loop).
  console.log(
    '\n| implementation | mode | parallel | images | images/s | vs Pillow | CPU ms/image | vs Pillow (CPU) | event loop delay p99 / max |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const base = rows.find((x) => x.impl.startsWith('Pillow') && x.parallel === r.parallel && x.mode === r.mode)!;
    console.log(
      `| ${r.impl} | ${r.mode} | ${r.parallel} | ${r.images} | ${r.imagesPerSecond.toFixed(2)} | ${(r.imagesPerSecond / base.imagesPerSecond).toFixed(2)}x | ${r.cpuMsPerImage.toFixed(1)} | ${(base.cpuMsPerImage / r.cpuMsPerImage).toFixed(2)}x | ${r.eventLoopDelayMs ? `${r.eventLoopDelayMs.p99.toFixed(1)} / ${r.eventLoopDelayMs.max.toFixed(1)} ms` : '-'} |`,
    );
  }
  const summary: Record<string, { ratio: number; cpuRatio: number }> = {};
  for (const mode of ['pixels', 'encoded'] as const) {
    const of = (prefix: string) => rows.filter((r) => r.mode === mode && r.impl.startsWith(prefix));
    const best = (prefix: string) => Math.max(...of(prefix).map((r) => r.imagesPerSecond));
    const cpu = (prefix: string) => Math.min(...of(prefix).map((r) => r.cpuMsPerImage));
    summary[mode] = { ratio: best('glimpse') / best('Pillow'), cpuRatio: cpu('Pillow') / cpu('glimpse') };
    console.log(
      `${mode.padEnd(8)} best glimpse / best Pillow: ${summary[mode].ratio.toFixed(2)}x images/s, ${summary[mode].cpuRatio.toFixed(2)}x less CPU per image${mode === 'pixels' ? ' (target >= 2x)' : ''}`,
    );
  }
  const ratio = summary.pixels!.ratio;
  const cpuRatio = summary.pixels!.cpuRatio;

  // Context, not the target: Pillow without draft, as Python model servers commonly load images
  // (Image.open(...).convert('RGB'), then resize), against glimpse's best row above.
  const plain = pillow<{ imagesPerSecond: number; cpuMsPerImage: number }>(
    set.map((f) => f.path),
    cores,
    'plain',
  );
  const bestGlimpse = Math.max(
    ...rows.filter((r) => r.mode === 'pixels' && r.impl.startsWith('glimpse')).map((r) => r.imagesPerSecond),
  );
  const plainRatio = bestGlimpse / plain.imagesPerSecond;
  console.log(
    `context: Pillow without draft (full-size decode, as Image.open(...).convert('RGB') then resize does), ${cores} processes: ${plain.imagesPerSecond.toFixed(2)} images/s, ${plain.cpuMsPerImage.toFixed(1)} CPU ms/image; best glimpse is ${plainRatio.toFixed(2)}x that (not the target's baseline)`,
  );

  const outDir = join(root, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `images-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        bench: 'images',
        date: new Date().toISOString(),
        cores,
        maxEdge: MAX_EDGE,
        secondsPerRow: SECONDS,
        files: set.map((f) => ({ name: f.name, bytes: f.data.length })),
        perFile,
        rows,
        bestRatio: ratio,
        codecCeiling: ceiling,
        oneAtATimeRatio: oneAtATime,
        cpuRatio,
        summary,
        context: { pillowWithoutDraft: plain, bestGlimpseOverIt: plainRatio },
        loadAverage: loadavg(),
      },
      null,
      2,
    ),
  );
  console.log(`wrote ${file}`);
}

await main();
