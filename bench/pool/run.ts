/**
 * bench/pool: glimpse in front of N simulated vLLM replicas (bench/pool/replica-sim.ts) vs nginx
 * `least_conn` over the same replicas, under the same closed-loop load, loopback only.
 *
 *   npm run bench:pool                                   # 3 replicas x 8 seqs, 48 clients, 20 s per run
 *   npm run bench:pool -- --seconds 10 --scenarios text  # shorter, text only
 *
 * Scenarios: `text` (text-only questions, every answer 32 tokens), `varied` (the same, answers of
 * 4 to 60 tokens, mean 32, as chat answers vary) and `images` (a set of distinct images, each asked
 * about several times in a random order, so a replica that saw an image recently prefills it fast).
 * Every request samples (temperature 0.8), so no answer cache anywhere serves it: what is measured
 * is where requests go and when. Each run gets fresh replicas (cold caches) and a fresh proxy.
 * glimpse runs with its defaults and nothing but the URLs (`--engine upstream --upstream a,b,c`);
 * when it does not serve the model the replicas serve under that name (no model discovery), the run
 * says so and adds `--upstream-model`, the one flag needed to measure the rest.
 * Reported per run: answers/s, latency p50/p99 (and p99 of the answers started after the first
 * `--warmup-seconds`, for both targets alike), time to first token p50, the replicas' mean
 * running and waiting (their own vLLM gauges, sampled every 100 ms), image cache hit rate, and how
 * late the replicas' steps fired (the simulator keeps its own clock, but on 2 shared cores a busy
 * proxy can still delay a step: this says by how much). Prints a table; writes JSON to bench/results/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Agent, request } from 'undici';
import { startNginxWith, type RunningNginx } from '../nginx.js';
import { freePort, sleep } from '../util.js';
import { buildGlimpse, closedLoop, pct, printTable, startGlimpse, throughput, type Answer } from '../harness.js';

const { values: args } = parseArgs({
  options: {
    replicas: { type: 'string', default: '3' },
    'max-num-seqs': { type: 'string', default: '8' },
    clients: { type: 'string', default: '48' },
    seconds: { type: 'string', default: '20' },
    'warmup-seconds': {
      type: 'string',
      default: '5',
      description: 'answers started in the first seconds are left out of the steady-state p99 (both targets)',
    },
    'max-requests': { type: 'string', default: '20000', description: 'bound on requests per run' },
    images: { type: 'string', default: '24', description: 'distinct images in the images scenario' },
    'image-cache-size': { type: 'string', default: '8', description: 'images each replica keeps cached' },
    scenarios: { type: 'string', default: 'text,varied,images' },
    'varied-min-tokens': {
      type: 'string',
      default: '4',
      description: 'in the varied scenario answers run from this many tokens to 64 minus it (mean 32)',
    },
    targets: { type: 'string', default: 'nginx,glimpse' },
    'url-suffix': {
      type: 'string',
      default: '',
      description: 'appended to every replica URL glimpse is given, e.g. #max=8 to try a fixed limit',
    },
    dump: {
      type: 'string',
      description: 'a folder to write every answer of every run to, as JSON (timings, for a closer look)',
    },
    'glimpse-flags': {
      type: 'string',
      default: '',
      description: 'extra glimpse flags (space-separated), e.g. to try a setting',
    },
  },
});
const num = (k: keyof typeof args) => Number(args[k]);
const MODEL = 'zai-org/GLM-4.6V-Flash';
const QUESTIONS = [
  'What is in this image?',
  'Describe the picture.',
  'What colours do you see?',
  'Is there any text here?',
];

/** Distinct small PNGs of noise (deterministic), as data URLs. */
async function makeImages(n: number): Promise<string[]> {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
  return await Promise.all(
    Array.from({ length: n }, async () => {
      const px = Buffer.alloc(64 * 64 * 3, 0).map(() => rand());
      const png = await sharp(px, { raw: { width: 64, height: 64, channels: 3 } })
        .png()
        .toBuffer();
      return `data:image/png;base64,${png.toString('base64')}`;
    }),
  );
}

async function startReplicas(scenario: string): Promise<{ child: ChildProcess; urls: string[] }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(new URL('./replica-sim.ts', import.meta.url)),
      '--replicas',
      args.replicas,
      '--max-num-seqs',
      args['max-num-seqs'],
      '--image-cache-size',
      args['image-cache-size'],
      ...(scenario === 'varied' ? ['--answer-tokens-min', args['varied-min-tokens']] : []),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  for await (const c of child.stdout) {
    out += c;
    if (out.includes('\n')) break;
  }
  return { child, urls: (JSON.parse(out) as { urls: string[] }).urls };
}

/** nginx `least_conn` over the replicas, as an operator would write it (shared zone, keepalive, no buffering). */
async function startPoolNginx(urls: string[]): Promise<RunningNginx> {
  const port = await freePort();
  const servers = urls.map((u) => `    server ${new URL(u).host};`).join('\n');
  const body = `  upstream vllm {
    least_conn;
    zone vllm 64k;
${servers}
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 20m;
    location / {
      proxy_pass http://vllm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }
  }`;
  return await startNginxWith(body, port, { workers: 'auto', probePath: '/health', accessLog: false });
}

interface Gauges {
  meanRunning: number;
  meanWaiting: number;
  maxWaiting: number;
  samples: number;
}

/** Sample every replica's vLLM gauges until stopped; means are per replica. */
function sampleGauges(urls: string[]): { stop(): Promise<Gauges> } {
  const bases = urls.map((u) => u.replace(/\/v1$/, ''));
  const dispatcher = new Agent({ connections: 4 });
  let running = 0;
  let waiting = 0;
  let maxWaiting = 0;
  let n = 0;
  let stopped = false;
  const value = (text: string, name: string) =>
    Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const loop = (async () => {
    while (!stopped) {
      const texts = await Promise.all(
        bases.map((b) => request(b + '/metrics', { dispatcher }).then((r) => r.body.text())),
      );
      for (const t of texts) {
        const w = value(t, 'vllm:num_requests_waiting');
        running += value(t, 'vllm:num_requests_running');
        waiting += w;
        maxWaiting = Math.max(maxWaiting, w);
        n++;
      }
      await sleep(100);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await dispatcher.close();
      return { meanRunning: running / n, meanWaiting: waiting / n, maxWaiting, samples: n };
    },
  };
}

/** The replicas' own account of their clock (replica-sim.ts /sim/stats), over all of them. */
async function simLate(urls: string[]): Promise<Row['simLate']> {
  let steps = 0;
  let lateMs = 0;
  let maxMs = 0;
  for (const u of urls) {
    const st = (await (await fetch(u.replace(/\/v1$/, '') + '/sim/stats')).json()) as {
      steps: number;
      lateMs: number;
      maxLateMs: number;
    };
    steps += st.steps;
    lateMs += st.lateMs;
    maxMs = Math.max(maxMs, st.maxLateMs);
  }
  return { meanMs: steps ? lateMs / steps : 0, maxMs };
}

async function cacheHitRate(urls: string[]): Promise<number> {
  let q = 0;
  let h = 0;
  for (const u of urls) {
    const t = await (await fetch(u.replace(/\/v1$/, '') + '/metrics')).text();
    q += Number(/^vllm:mm_cache_queries_total\S* (\S+)$/m.exec(t)?.[1] ?? 0);
    h += Number(/^vllm:mm_cache_hits_total\S* (\S+)$/m.exec(t)?.[1] ?? 0);
  }
  return q ? h / q : NaN;
}

interface Row {
  scenario: string;
  target: string;
  note: string;
  answers: number;
  failed: number;
  answersPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** p99 of the answers started after the warm-up (a cold pool's first seconds left out, for both targets). */
  p99SteadyMs: number;
  /** Time to first token p90/p99 split in two: waiting in the proxy's own queue, and from admission to the first token. */
  ttftSplit: {
    ttftP90Ms: number;
    ttftP99Ms: number;
    queueP90Ms: number;
    afterAdmissionP90Ms: number;
    afterAdmissionP99Ms: number;
  };
  ttftP50Ms: number;
  gauges: Gauges;
  imageHitRate: number;
  /** How late the replicas' steps fired, mean and worst, ms: the host's CPU letting the simulated GPU clock slip. */
  simLate: { meanMs: number; maxMs: number };
}

/** Where the time to first token goes: the proxy's queue (glimpse says how long; nginx has none) and after it. */
function ttftSplit(ok: Answer[]): Row['ttftSplit'] {
  const started = ok.filter((a) => a.ttftMs !== undefined);
  const ttft = started.map((a) => a.ttftMs!);
  const queue = started.map((a) => a.queueMs ?? 0);
  const after = started.map((a) => a.ttftMs! - (a.queueMs ?? 0));
  return {
    ttftP90Ms: pct(ttft, 90),
    ttftP99Ms: pct(ttft, 99),
    queueP90Ms: pct(queue, 90),
    afterAdmissionP90Ms: pct(after, 90),
    afterAdmissionP99Ms: pct(after, 99),
  };
}

async function runOne(scenario: string, target: string, images: string[]): Promise<Row> {
  const { child: sim, urls } = await startReplicas(scenario);
  let stopProxy: () => Promise<void>;
  let base: string;
  let note = '';
  if (target === 'nginx') {
    const ngx = await startPoolNginx(urls);
    base = ngx.url;
    stopProxy = ngx.stop;
  } else {
    const extra = args['glimpse-flags'].split(' ').filter(Boolean);
    const given = urls.map((u) => u + args['url-suffix']).join(',');
    let g = await startGlimpse(['--engine', 'upstream', '--upstream', given, ...extra]);
    const served = ((await (await fetch(g.url + '/v1/models')).json()) as { data: Array<{ id: string }> }).data.map(
      (m) => m.id,
    );
    if (!served.includes(MODEL)) {
      // The model the replicas serve is not served under its name: no discovery. Pin it and go on.
      note = `no model discovery (served ${JSON.stringify(served)}); ran with --upstream-model`;
      await g.stop();
      g = await startGlimpse(['--engine', 'upstream', '--upstream', given, '--upstream-model', MODEL, ...extra]);
    }
    base = g.url;
    stopProxy = g.stop;
  }
  let i = 0;
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
  const bodyFor = () => {
    const question = QUESTIONS[i++ % QUESTIONS.length];
    const content =
      scenario === 'images'
        ? [
            { type: 'text', text: question },
            { type: 'image_url', image_url: { url: images[Math.floor(rand() * images.length)] } },
          ]
        : question;
    return JSON.stringify({ model: MODEL, stream: true, temperature: 0.8, messages: [{ role: 'user', content }] });
  };
  const sampler = sampleGauges(urls);
  const answers: Answer[] = await closedLoop(base + '/v1/chat/completions', bodyFor, {
    clients: num('clients'),
    seconds: num('seconds'),
    maxRequests: num('max-requests'),
    stream: true,
  });
  const gauges = await sampler.stop();
  const imageHitRate = await cacheHitRate(urls);
  const late = await simLate(urls);
  await stopProxy();
  sim.kill('SIGTERM');
  await once(sim, 'exit');
  const ok = answers.filter((a) => a.ok);
  if (args.dump) {
    mkdirSync(args.dump, { recursive: true });
    writeFileSync(`${args.dump}/${scenario}-${target}.json`, JSON.stringify(answers));
  }
  const lat = ok.map((a) => a.ms);
  const firstStart = Math.min(...answers.map((a) => a.start));
  return {
    scenario,
    target,
    note,
    answers: ok.length,
    failed: answers.length - ok.length,
    answersPerSecond: throughput(answers),
    p50Ms: pct(lat, 50),
    p99Ms: pct(lat, 99),
    p99SteadyMs: pct(
      ok.filter((a) => a.start >= firstStart + num('warmup-seconds') * 1000).map((a) => a.ms),
      99,
    ),
    ttftP50Ms: pct(ok.map((a) => a.ttftMs ?? NaN).filter(Number.isFinite), 50),
    ttftSplit: ttftSplit(ok),
    gauges,
    imageHitRate,
    simLate: late,
  };
}

async function main(): Promise<void> {
  buildGlimpse();
  const images = await makeImages(num('images'));
  const rows: Row[] = [];
  const when = new Date().toISOString();
  const load0 = loadavg()[0];
  for (const scenario of args.scenarios.split(',')) {
    for (const target of args.targets.split(',')) {
      const r = await runOne(scenario, target, images);
      rows.push(r);
      console.error(`${scenario}/${target}: ${r.answersPerSecond.toFixed(1)} answers/s${r.note ? ` (${r.note})` : ''}`);
    }
  }
  const ratio = (s: string, key: 'answersPerSecond' | 'p99Ms' | 'p99SteadyMs') => {
    const n = rows.find((r) => r.scenario === s && r.target === 'nginx');
    const g = rows.find((r) => r.scenario === s && r.target === 'glimpse');
    return n && g ? g[key] / n[key] : NaN;
  };
  console.log(
    `pool: ${args.replicas} simulated vLLM replicas x ${args['max-num-seqs']} seqs, ${args.clients} clients closed loop, ${args.seconds} s per run; ` +
      `${args.images} images, ${args['image-cache-size']} cached per replica; load average ${load0.toFixed(2)} at start`,
  );
  printTable(
    [
      'scenario',
      'target',
      'answers/s',
      'p50 ms',
      'p99 ms',
      'p99 steady',
      'ttft p50',
      'failed',
      'replica running',
      'replica waiting',
      'max waiting',
      'image hits',
      'step late ms',
    ],
    rows.map((r) => [
      r.scenario,
      r.target,
      r.answersPerSecond.toFixed(1),
      r.p50Ms.toFixed(0),
      r.p99Ms.toFixed(0),
      r.p99SteadyMs.toFixed(0),
      r.ttftP50Ms.toFixed(0),
      String(r.failed),
      r.gauges.meanRunning.toFixed(2),
      r.gauges.meanWaiting.toFixed(2),
      String(r.gauges.maxWaiting),
      Number.isFinite(r.imageHitRate) ? `${(r.imageHitRate * 100).toFixed(0)}%` : '-',
      `${r.simLate.meanMs.toFixed(2)} (max ${r.simLate.maxMs.toFixed(0)})`,
    ]),
  );
  const verdict = {
    textThroughputVsNginx: ratio('text', 'answersPerSecond'),
    textP99VsNginx: ratio('text', 'p99Ms'),
    textSteadyP99VsNginx: ratio('text', 'p99SteadyMs'),
    variedThroughputVsNginx: ratio('varied', 'answersPerSecond'),
    variedP99VsNginx: ratio('varied', 'p99Ms'),
    variedSteadyP99VsNginx: ratio('varied', 'p99SteadyMs'),
    imagesThroughputVsNginx: ratio('images', 'answersPerSecond'),
    glimpseMeanWaiting: Math.max(...rows.filter((r) => r.target === 'glimpse').map((r) => r.gauges.meanWaiting)),
  };
  console.log(
    `glimpse / nginx: text ${verdict.textThroughputVsNginx.toFixed(2)}x answers/s (target >= 0.95), p99 ${verdict.textP99VsNginx.toFixed(2)}x (target <= 1; after the first ${args['warmup-seconds']} s ${verdict.textSteadyP99VsNginx.toFixed(2)}x); ` +
      `varied ${verdict.variedThroughputVsNginx.toFixed(2)}x, p99 ${verdict.variedP99VsNginx.toFixed(2)}x (after the first ${args['warmup-seconds']} s ${verdict.variedSteadyP99VsNginx.toFixed(2)}x); ` +
      `images ${verdict.imagesThroughputVsNginx.toFixed(2)}x (target >= 1.2); replicas' mean waiting under glimpse ${verdict.glimpseMeanWaiting.toFixed(2)} (target <= 1)`,
  );
  for (const r of rows) {
    const s = r.ttftSplit;
    console.log(
      `  ${r.scenario}/${r.target}: first token p90 ${s.ttftP90Ms.toFixed(0)} ms, p99 ${s.ttftP99Ms.toFixed(0)} ms; ` +
        `in the proxy's queue p90 ${s.queueP90Ms.toFixed(0)} ms; from admission to first token p90 ${s.afterAdmissionP90Ms.toFixed(0)} ms, p99 ${s.afterAdmissionP99Ms.toFixed(0)} ms`,
    );
  }
  for (const r of rows) if (r.note) console.log(`  ${r.scenario}/${r.target}: ${r.note}`);
  mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
  const out = fileURLToPath(new URL(`../results/pool-${Date.now()}.json`, import.meta.url));
  writeFileSync(out, JSON.stringify({ when, loadAverageAtStart: load0, config: args, rows, verdict }, null, 2));
  console.log(`wrote ${out}`);
}

await main();
