#!/usr/bin/env -S node --import tsx
/**
 * bench/embedded: the same prompts through glimpse's HTTP API (embedded engine, SSE streaming)
 * and through a plain script calling transformers.js directly, in one run, alternating, on the
 * tiny fixture model and on any real model already in glimpse's cache.
 *
 * Each side runs in a process of its own, taking turns: `glimpse serve` as users start it, and
 * the direct script (bench/embedded-direct.ts). This process is only the client.
 *
 * Prints tokens/s and time to first token for both, and writes JSON to bench/results/.
 * Target: glimpse >= 0.95x the direct script's tokens/s, and <= 5 ms added to TTFT.
 *
 * Usage: npm run bench:embedded [-- --rounds 5 --max-tokens 128 --image 448x448 --model <dir-or-id> ...]
 *
 * `--image WxH` sets the size of the (solid colour) image every prompt sends, 64x48 by default:
 * a document page for GLM-OCR (448x448 is 256 image tokens; 1024 px pages took minutes per
 * request at GLM-OCR's real size on 2 cores, so they are not the default).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { defaultCacheDir, resolveModel, solidPng } from '../src/engines/embedded/index.js';
import type { DirectRun, DirectSample } from './embedded-direct.js';
import { decodeRate, freePort, sleep } from './util.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    'max-tokens': { type: 'string', default: '128' },
    model: { type: 'string', multiple: true },
    image: { type: 'string', default: '64x48' },
  },
});
const ROUNDS = Number(args.rounds);
const MAX_TOKENS = Number(args['max-tokens']);
const IMAGE = /^(\d+)x(\d+)$/.exec(args.image!);
if (!IMAGE) throw new Error(`--image must be WIDTHxHEIGHT, not ${args.image}`);
const IMAGE_SIZE: [number, number] = [Number(IMAGE[1]), Number(IMAGE[2])];
const root = new URL('..', import.meta.url).pathname;
const FIXTURE = new URL('../fixtures/tiny-vlm', import.meta.url).pathname;
const REAL_DEFAULT = 'HuggingFaceTB/SmolVLM-256M-Instruct';

const PROMPTS: { text: string; rgb: [number, number, number] }[] = [
  { text: 'What is in this picture?', rgb: [200, 30, 30] },
  { text: 'Describe the image in one sentence.', rgb: [20, 90, 200] },
  { text: 'What color is the background?', rgb: [40, 180, 60] },
];

type Sample = DirectSample;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** CPU time of every thread of a process, ms (Linux schedstat: nanoseconds on CPU per thread). */
function processCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return ns / 1e6;
}

/** Peak resident memory of a process so far (Linux VmHWM), MB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The direct script in its own process; resolves once its model is loaded. */
async function startDirect(modelDir: string, dtype: string | null, threads: number) {
  const child = fork(
    new URL('./embedded-direct.ts', import.meta.url).pathname,
    [modelDir, dtype ?? 'default', String(threads)],
    {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    },
  );
  let pending: { resolve: (s: Sample) => void; reject: (e: Error) => void } | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the direct script exited (${code}) before it was ready`)));
    child.on('message', (msg: { type: string; sample?: Sample; message?: string }) => {
      if (msg.type === 'ready') resolve();
      else if (msg.type === 'sample') pending?.resolve(msg.sample!);
      else if (msg.type === 'error') pending?.reject(new Error(msg.message));
    });
  });
  await ready;
  return {
    pid: child.pid!,
    run: (p: (typeof PROMPTS)[number], maxTokens: number) =>
      new Promise<Sample>((resolve, reject) => {
        pending = { resolve, reject };
        child.send({ type: 'run', text: p.text, rgb: p.rgb, size: IMAGE_SIZE, maxTokens } satisfies DirectRun);
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send({ type: 'exit' });
      }),
  };
}

/** `glimpse serve` on the embedded engine, as a user runs it, in its own process. */
async function startGlimpse(modelPath: string, threads: number): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      new URL('../src/cli/main.ts', import.meta.url).pathname,
      'serve',
      '--engine',
      'embedded',
      '--model-path',
      modelPath,
      '--offline',
      '--port',
      String(port),
      '--log-level',
      'warn',
      '--embedded-threads',
      String(threads),
      // Every round repeats the same deterministic prompts, and a cache hit is not a generation.
      '--no-cache',
    ],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 1200; i++) {
    const ok = await request(`${url}/ready`).then(
      (r) => (r.body.dump(), r.statusCode === 200),
      () => false,
    );
    if (ok) return { url, child };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error('glimpse did not become ready');
}

async function benchModel(label: string, modelPath: string) {
  const resolved = await resolveModel({
    modelPath,
    cacheDir: defaultCacheDir(),
    offline: true,
    hubUrl: 'http://127.0.0.1:9',
    revision: 'main',
    dtype: 'auto',
  });
  const threads = availableParallelism();
  const direct = await startDirect(resolved.dir, resolved.dtype ?? null, threads);
  const glimpse = await startGlimpse(modelPath, threads);
  const { url } = glimpse;
  const pid = glimpse.child.pid!;
  const servedAs = ((await (await request(`${url}/v1/models`)).body.json()) as { data: { id: string }[] }).data[0]!.id;

  const viaGlimpse = async (p: (typeof PROMPTS)[number], maxTokens = MAX_TOKENS): Promise<Sample> => {
    const body = JSON.stringify({
      model: servedAs,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: maxTokens,
      temperature: 0,
      messages: [
        {
          role: 'user',
          content: [
            {
              type: 'image_url',
              image_url: { url: `data:image/png;base64,${solidPng(...IMAGE_SIZE, p.rgb).toString('base64')}` },
            },
            { type: 'text', text: p.text },
          ],
        },
      ],
    });
    const c0 = processCpuMs(pid);
    const t0 = performance.now();
    // undici's request(): the leanest HTTP client in Node, so the client's own cost stays small.
    const res = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    if (res.statusCode !== 200) throw new Error(`glimpse answered HTTP ${res.statusCode}: ${await res.body.text()}`);
    const decoder = new TextDecoder();
    let first = 0;
    let last = 0;
    let tokens = 0;
    let buf = '';
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      let at: number;
      while ((at = buf.indexOf('\n\n')) !== -1) {
        const line = buf.slice(0, at).trim();
        buf = buf.slice(at + 2);
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        if (line.includes('"content":"') && !line.includes('"content":""')) {
          last = performance.now();
          if (!first) first = last;
        }
        if (line.includes('"usage":{'))
          tokens = (JSON.parse(line.slice(6)) as { usage: { completion_tokens: number } }).usage.completion_tokens;
      }
    }
    const total = performance.now() - t0;
    return {
      ttftMs: first - t0,
      totalMs: total,
      tokens,
      tokensPerSecond: decodeRate(tokens, first, last),
      endToEndTokensPerSecond: tokens / (total / 1000),
      cpuMsPerToken: (processCpuMs(pid) - c0) / tokens,
    };
  };

  // Warm both paths once, then alternate so drift (thermal, other load) hits both equally.
  await direct.run(PROMPTS[0]!, MAX_TOKENS);
  await viaGlimpse(PROMPTS[0]!);
  const samples = { direct: [] as Sample[], glimpse: [] as Sample[] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const p of PROMPTS) {
      const order = r % 2 ? (['glimpse', 'direct'] as const) : (['direct', 'glimpse'] as const);
      for (const side of order)
        samples[side].push(await (side === 'direct' ? direct.run(p, MAX_TOKENS) : viaGlimpse(p)));
    }
  }
  // /health latency while a generation runs (target: p99 under 20 ms).
  const healthMs: number[] = [];
  let generating = true;
  // Generations back to back for at least 3 s.
  const long = (async () => {
    const until = performance.now() + 3000;
    let tokens = 0;
    const t0 = performance.now();
    while (performance.now() < until) tokens += (await viaGlimpse(PROMPTS[0]!)).tokens;
    return { tokens, totalMs: performance.now() - t0 };
  })().finally(() => (generating = false));
  while (generating) {
    const h0 = performance.now();
    await (await request(`${url}/health`)).body.arrayBuffer();
    healthMs.push(performance.now() - h0);
    await sleep(2);
  }
  const longRun = await long;
  healthMs.sort((a, b) => a - b);
  const healthP99 = healthMs[Math.min(healthMs.length - 1, Math.floor(healthMs.length * 0.99))] ?? NaN;

  const peakRss = { direct: peakRssMb(direct.pid), glimpse: peakRssMb(pid) };
  glimpse.child.kill('SIGTERM');
  await new Promise((r) => glimpse.child.once('exit', r));
  await direct.stop();

  const summary = (s: Sample[]) => ({
    tokensPerSecond: median(s.map((x) => x.tokensPerSecond)),
    endToEndTokensPerSecond: median(s.map((x) => x.endToEndTokensPerSecond)),
    ttftMs: median(s.map((x) => x.ttftMs)),
    totalMs: median(s.map((x) => x.totalMs)),
    tokens: median(s.map((x) => x.tokens)),
    cpuMsPerToken: median(s.map((x) => x.cpuMsPerToken)),
  });
  const d = summary(samples.direct);
  const g = summary(samples.glimpse);
  return {
    label,
    modelPath,
    dtype: resolved.dtype ?? 'model default',
    direct: d,
    glimpse: g,
    ratioTokensPerSecond: g.tokensPerSecond / d.tokensPerSecond,
    ratioEndToEnd: g.endToEndTokensPerSecond / d.endToEndTokensPerSecond,
    addedTtftMs: g.ttftMs - d.ttftMs,
    healthP99Ms: healthP99,
    peakRssMb: peakRss,
    healthSamples: healthMs.length,
    healthDuringMs: longRun.totalMs,
    healthDuringTokens: longRun.tokens,
    samples,
  };
}

const targets: [string, string][] = (args.model ?? []).map((m) => [m, m]);
if (!targets.length) {
  targets.push(['tiny-vlm fixture', FIXTURE]);
  // A real model joins the run when it is already in the cache (never downloaded by the bench).
  try {
    await resolveModel({
      modelPath: REAL_DEFAULT,
      cacheDir: defaultCacheDir(),
      offline: true,
      hubUrl: 'http://127.0.0.1:9',
      revision: 'main',
      dtype: 'auto',
    });
    targets.push([REAL_DEFAULT, REAL_DEFAULT]);
  } catch {
    console.log(`(${REAL_DEFAULT} is not cached here: benchmarking the fixture only)`);
  }
}

const results = [];
for (const [label, path] of targets) results.push(await benchModel(label, path));

const rows = results.map((r) => [
  r.label,
  r.direct.tokensPerSecond.toFixed(1),
  r.glimpse.tokensPerSecond.toFixed(1),
  r.ratioTokensPerSecond.toFixed(3) + (r.ratioTokensPerSecond >= 0.95 ? ' ok' : ' LOW'),
  r.direct.ttftMs.toFixed(1),
  r.glimpse.ttftMs.toFixed(1),
  (r.addedTtftMs >= 0 ? '+' : '') + r.addedTtftMs.toFixed(1) + (r.addedTtftMs <= 5 ? ' ok' : ' HIGH'),
  `${r.direct.endToEndTokensPerSecond.toFixed(0)} / ${r.glimpse.endToEndTokensPerSecond.toFixed(0)} (${r.ratioEndToEnd.toFixed(3)})`,
  r.direct.cpuMsPerToken.toFixed(3),
  r.glimpse.cpuMsPerToken.toFixed(3),
  `${r.healthP99Ms.toFixed(1)} (n=${r.healthSamples} over ${r.healthDuringTokens} tokens)`,
  `${r.peakRssMb.direct.toFixed(0)} / ${r.peakRssMb.glimpse.toFixed(0)}`,
]);
const header = [
  'model',
  'direct decode tok/s',
  'glimpse decode tok/s',
  'ratio (>=0.95)',
  'direct TTFT ms',
  'glimpse TTFT ms',
  'added TTFT (<=5 ms)',
  'end-to-end tok/s direct / glimpse',
  'direct CPU ms/tok',
  'glimpse server CPU ms/tok',
  '/health p99 ms while generating',
  'peak RSS MB direct / glimpse',
];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(
  `\nload average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} (compare runs only when it is low)`,
);
console.log(
  `\nbench/embedded: ${ROUNDS} rounds x ${PROMPTS.length} prompts, ${IMAGE_SIZE.join('x')} image, ${MAX_TOKENS} tokens each, medians; ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}\n`,
);
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));

const outDir = new URL('./results/', import.meta.url).pathname;
mkdirSync(outDir, { recursive: true });
const file = `${outDir}embedded-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(
  file,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      loadAverage: loadavg(),
      rounds: ROUNDS,
      maxTokens: MAX_TOKENS,
      image: IMAGE_SIZE,
      cpu: cpus()[0]?.model,
      cores: availableParallelism(),
      results,
    },
    null,
    2,
  ),
);
console.log(`\nwrote ${file}`);
