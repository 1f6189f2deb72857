#!/usr/bin/env -S node --import tsx
/**
 * bench/embedded: the same prompts through glimpse's HTTP API (embedded engine, SSE streaming)
 * and through a plain script calling transformers.js directly, in one run, alternating, on the
 * tiny fixture model and on any real model already in glimpse's cache.
 *
 * Prints tokens/s and time to first token for both, and writes JSON to bench/results/.
 * Target: glimpse >= 0.95x the direct script's tokens/s, and <= 5 ms added to TTFT.
 *
 * Usage: npm run bench:embedded [-- --rounds 5 --max-tokens 128 --model <dir-or-id> ...]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { AutoModelForImageTextToText, AutoProcessor, RawImage, env } from '@huggingface/transformers';
import { loadConfig } from '../src/config/index.js';
import { createServer } from '../src/server/index.js';
import { createLogger } from '../src/observability/index.js';
import { defaultCacheDir, resolveModel, solidPng } from '../src/engines/embedded/index.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    'max-tokens': { type: 'string', default: '128' },
    model: { type: 'string', multiple: true },
  },
});
const ROUNDS = Number(args.rounds);
const MAX_TOKENS = Number(args['max-tokens']);
const FIXTURE = new URL('../fixtures/tiny-vlm', import.meta.url).pathname;
const REAL_DEFAULT = 'HuggingFaceTB/SmolVLM-256M-Instruct';

const PROMPTS: { text: string; rgb: [number, number, number] }[] = [
  { text: 'What is in this picture?', rgb: [200, 30, 30] },
  { text: 'Describe the image in one sentence.', rgb: [20, 90, 200] },
  { text: 'What color is the background?', rgb: [40, 180, 60] },
];

interface Sample {
  ttftMs: number;
  totalMs: number;
  tokens: number;
  /** Completion tokens per second over the whole request (prefill included). */
  tokensPerSecond: number;
  /** CPU time of this whole process (all threads) per completion token: steadier than wall time on a busy machine. */
  cpuMsPerToken: number;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function benchModel(label: string, modelPath: string) {
  const resolved = await resolveModel({ modelPath, cacheDir: defaultCacheDir(), offline: true, hubUrl: 'http://127.0.0.1:9', revision: 'main', dtype: 'auto' });
  const threads = availableParallelism();

  // ---- direct: transformers.js in this process, as a plain script would use it ----
  env.allowRemoteModels = false;
  const processor = await AutoProcessor.from_pretrained(resolved.dir);
  const model = await AutoModelForImageTextToText.from_pretrained(resolved.dir, {
    dtype: (resolved.dtype ?? undefined) as never,
    device: 'cpu',
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
  const direct = async (p: (typeof PROMPTS)[number]): Promise<Sample> => {
    const c0 = cpuMs();
    const t0 = performance.now();
    const png = solidPng(64, 48, p.rgb);
    const image = await RawImage.fromBlob(new Blob([png]));
    const prompt = processor.apply_chat_template([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: p.text }] }] as never, { add_generation_prompt: true }) as string;
    const inputs = await processor(prompt, [image]);
    let first = 0;
    let count = 0;
    let seenPrompt = false;
    await model.generate({
      ...inputs,
      max_new_tokens: MAX_TOKENS,
      do_sample: false,
      streamer: {
        put() {
          if (!seenPrompt) return void (seenPrompt = true);
          if (!count++) first = performance.now();
        },
        end() {},
      },
    } as never);
    const total = performance.now() - t0;
    return { ttftMs: first - t0, totalMs: total, tokens: count, tokensPerSecond: count / (total / 1000), cpuMsPerToken: (cpuMs() - c0) / count };
  };

  // ---- glimpse: the real server over HTTP, streaming ----
  // The answer cache off: every round repeats the same deterministic prompts, and a hit is not a generation.
  const config = loadConfig({ flags: { engine: 'embedded', modelPath, port: 0, logLevel: 'silent', offline: true, maxTokensLimit: 100000, cache: { enabled: false } }, env: {} });
  const server = await createServer(config, { logger: createLogger({ level: 'silent', format: 'json' }) });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  await server.engineStarted;
  if (!server.engine.health().ready) throw new Error(`glimpse did not get ready: ${server.engine.health().reason}`);
  const servedAs = server.engine.info().model;
  const viaGlimpse = async (p: (typeof PROMPTS)[number], maxTokens = MAX_TOKENS): Promise<Sample> => {
    const c0 = cpuMs();
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: servedAs,
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: maxTokens,
        temperature: 0,
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${solidPng(64, 48, p.rgb).toString('base64')}` } }, { type: 'text', text: p.text }] }],
      }),
    });
    if (!res.ok) throw new Error(`glimpse answered HTTP ${res.status}: ${await res.text()}`);
    const decoder = new TextDecoder();
    let first = 0;
    let tokens = 0;
    let buf = '';
    for await (const chunk of res.body!) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      let at: number;
      while ((at = buf.indexOf('\n\n')) !== -1) {
        const line = buf.slice(0, at).trim();
        buf = buf.slice(at + 2);
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        // The client shares this process (and the CPU) with the server: keep its per-chunk work to
        // a string test, and parse JSON only for the final usage chunk.
        if (!first && line.includes('"content":"') && !line.includes('"content":""')) first = performance.now();
        if (line.includes('"usage":{')) tokens = (JSON.parse(line.slice(6)) as { usage: { completion_tokens: number } }).usage.completion_tokens;
      }
    }
    const total = performance.now() - t0;
    return { ttftMs: first - t0, totalMs: total, tokens, tokensPerSecond: tokens / (total / 1000), cpuMsPerToken: (cpuMs() - c0) / tokens };
  };

  // Warm both paths once, then alternate so drift (thermal, other load) hits both equally.
  await direct(PROMPTS[0]!);
  await viaGlimpse(PROMPTS[0]!);
  const samples = { direct: [] as Sample[], glimpse: [] as Sample[] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const p of PROMPTS) {
      const [first, second] = r % 2 ? (['glimpse', 'direct'] as const) : (['direct', 'glimpse'] as const);
      samples[first].push(await (first === 'direct' ? direct(p) : viaGlimpse(p)));
      samples[second].push(await (second === 'direct' ? direct(p) : viaGlimpse(p)));
    }
  }
  // /health latency while a generation runs (target: p99 under 20 ms).
  const healthMs: number[] = [];
  let generating = true;
  // Generations back to back for 3 s (the fixture may stop early on its end token).
  const long = (async () => {
    const until = performance.now() + 3000;
    let tokens = 0;
    const t0 = performance.now();
    while (performance.now() < until) tokens += (await viaGlimpse(PROMPTS[0]!, 1500)).tokens;
    return { tokens, totalMs: performance.now() - t0 };
  })().finally(() => (generating = false));
  while (generating) {
    const h0 = performance.now();
    await (await fetch(`${url}/health`)).arrayBuffer();
    healthMs.push(performance.now() - h0);
    await new Promise((r) => setTimeout(r, 2));
  }
  const longRun = await long;
  healthMs.sort((a, b) => a - b);
  const healthP99 = healthMs[Math.min(healthMs.length - 1, Math.floor(healthMs.length * 0.99))] ?? NaN;

  await server.close();
  await model.dispose();

  const summary = (s: Sample[]) => ({
    tokensPerSecond: median(s.map((x) => x.tokensPerSecond)),
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
    addedTtftMs: g.ttftMs - d.ttftMs,
    healthP99Ms: healthP99,
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
    await resolveModel({ modelPath: REAL_DEFAULT, cacheDir: defaultCacheDir(), offline: true, hubUrl: 'http://127.0.0.1:9', revision: 'main', dtype: 'auto' });
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
  r.direct.cpuMsPerToken.toFixed(3),
  r.glimpse.cpuMsPerToken.toFixed(3),
  `${r.healthP99Ms.toFixed(1)} (n=${r.healthSamples} over ${r.healthDuringTokens} tokens)`,
]);
const header = ['model', 'direct tok/s', 'glimpse tok/s', 'ratio (>=0.95)', 'direct TTFT ms', 'glimpse TTFT ms', 'added TTFT (<=5 ms)', 'direct CPU ms/tok', 'glimpse CPU ms/tok', '/health p99 ms while generating'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(`\nload average ${loadavg().map((x) => x.toFixed(1)).join(' ')} (compare runs only when it is low)`);
console.log(`\nbench/embedded: ${ROUNDS} rounds x ${PROMPTS.length} prompts, ${MAX_TOKENS} tokens each, medians; ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}\n`);
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));

const outDir = new URL('./results/', import.meta.url).pathname;
mkdirSync(outDir, { recursive: true });
const file = `${outDir}embedded-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), loadAverage: loadavg(), rounds: ROUNDS, maxTokens: MAX_TOKENS, cpu: cpus()[0]?.model, cores: availableParallelism(), results }, null, 2));
console.log(`\nwrote ${file}`);
