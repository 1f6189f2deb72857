/**
 * bench/load: offered-load sweep against a real glimpse process running the simulated engine at a
 * known capacity. Per step: success rate of admitted requests, latency and TTFT percentiles,
 * rejection latency, hung requests, peak RSS of the server. A soak mode holds one load for a
 * duration and records RSS over time.
 *
 *   node --import tsx bench/load.ts                      # sweep 0.5x..10x, 5 s per step
 *   node --import tsx bench/load.ts --step-seconds 20    # longer steps
 *   node --import tsx bench/load.ts --soak 600           # 10-minute soak at 2x capacity
 *   node --import tsx bench/load.ts --soak 600 --soak-load 10
 *
 * Baselines measured in the same run: GET /health latency on the idle server (the loopback
 * floor) and the engine's nominal service time (the floor for a generation's latency).
 * Prints a table; writes JSON to bench/results/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { freePort, sleep } from './util.js';

const { values: args } = parseArgs({
  options: {
    'step-seconds': { type: 'string', default: '5' },
    steps: { type: 'string', default: '0.5,1,2,5,10' },
    soak: { type: 'string' },
    'soak-load': { type: 'string', default: '2' },
    'max-batch-size': { type: 'string', default: '8' },
    'max-queue': { type: 'string', default: '16' },
    'queue-timeout': { type: 'string', default: '5' },
    'ttft-ms': { type: 'string', default: '200' },
    'tokens-per-second': { type: 'string', default: '50' },
    'answer-tokens': { type: 'string', default: '32' },
    'client-timeout': {
      type: 'string',
      default: '60',
      description: 'seconds after which a request with no ending counts as hung',
    },
  },
});

const num = (k: keyof typeof args) => Number(args[k]);
const maxBatch = num('max-batch-size');
const ttftMs = num('ttft-ms');
const tps = num('tokens-per-second');
const answerTokens = num('answer-tokens');
const serviceMs = ttftMs + ((answerTokens - 1) * 1000) / tps;
const capacity = (maxBatch * 1000) / serviceMs; // requests per second the engine can finish
const clientTimeoutMs = num('client-timeout') * 1000;

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const dispatcher = new Agent({ connections: 2048, pipelining: 1, keepAliveTimeout: 10_000 });
const BODY = JSON.stringify({
  stream: true,
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'What is in this image?' },
        {
          type: 'image_url',
          image_url: {
            url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==',
          },
        },
      ],
    },
  ],
});

interface Outcome {
  kind: 'ok' | 'error_event' | 'rejected' | 'queue_timeout' | 'http_error' | 'hung' | 'transport';
  status: number;
  latencyMs: number;
  ttftMs?: number;
  code?: string;
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function startServer(port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      entry,
      'serve',
      '--engine',
      'simulated',
      '--port',
      String(port),
      '--log-level',
      'warn',
      '--max-batch-size',
      String(maxBatch),
      '--max-queue',
      args['max-queue']!,
      '--queue-timeout',
      args['queue-timeout']!,
    ],
    {
      cwd: root,
      env: {
        ...process.env,
        GLIMPSE_SIMULATED_TTFT_MS: String(ttftMs),
        GLIMPSE_SIMULATED_TOKENS_PER_SECOND: String(tps),
        GLIMPSE_SIMULATED_ANSWER_TOKENS: String(answerTokens),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  for (let i = 0; i < 400; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return child;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error('glimpse did not become ready');
}

async function one(base: string): Promise<Outcome> {
  const t0 = performance.now();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), clientTimeoutMs);
  try {
    const res = await request(base + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: BODY,
      dispatcher,
      signal: ac.signal,
    });
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      const code = /"code":"([a-z_]+)"/.exec(text)?.[1];
      const latencyMs = performance.now() - t0;
      return {
        kind: res.statusCode === 429 ? 'rejected' : code === 'queue_timeout' ? 'queue_timeout' : 'http_error',
        status: res.statusCode,
        latencyMs,
        code,
      };
    }
    let ttft: number | undefined;
    let tail = '';
    let errored: string | undefined;
    res.body.setEncoding('utf8');
    for await (const chunk of res.body as AsyncIterable<string>) {
      if (ttft === undefined && /"content":"[^"]/.test(chunk)) ttft = performance.now() - t0;
      const m = /"error":\{[^}]*"code":"([a-z_]+)"/.exec(chunk);
      if (m) errored = m[1];
      tail = (tail + chunk).slice(-64);
    }
    const latencyMs = performance.now() - t0;
    // A queued stream that waited out --queue-timeout was refused (after a bounded wait), not failed.
    if (errored === 'queue_timeout') return { kind: 'queue_timeout', status: 200, latencyMs, code: errored };
    if (errored) return { kind: 'error_event', status: 200, latencyMs, ttftMs: ttft, code: errored };
    if (!tail.includes('data: [DONE]'))
      return { kind: 'error_event', status: 200, latencyMs, ttftMs: ttft, code: 'no_terminator' };
    return { kind: 'ok', status: 200, latencyMs, ttftMs: ttft };
  } catch (err) {
    const latencyMs = performance.now() - t0;
    if (ac.signal.aborted) return { kind: 'hung', status: 0, latencyMs };
    return { kind: 'transport', status: 0, latencyMs, code: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface StepResult {
  label: string;
  offeredRps: number;
  sent: number;
  admitted: number;
  succeeded: number;
  successRateAdmitted: number;
  rejected: number;
  /** Waited the whole --queue-timeout, then 503: a bounded wait, not a failure of an admitted request. */
  queueTimeouts: number;
  otherErrors: Record<string, number>;
  hung: number;
  latencyMs: { p50: number; p95: number; p99: number };
  ttftMs: { p50: number; p95: number; p99: number };
  rejectionMs: { p50: number; p99: number; max: number };
  peakRssMiB: number;
}

function summarize(label: string, offeredRps: number, outcomes: Outcome[], peakRss: number): StepResult {
  const admitted = outcomes.filter((o) => o.kind === 'ok' || o.kind === 'error_event' || o.kind === 'hung');
  const ok = outcomes.filter((o) => o.kind === 'ok');
  // Rejection latency: how fast a refused client learns it (429 queue_full).
  const rejected = outcomes.filter((o) => o.kind === 'rejected');
  const otherErrors: Record<string, number> = {};
  for (const o of outcomes)
    if (o.kind !== 'ok' && o.kind !== 'rejected' && o.kind !== 'queue_timeout')
      otherErrors[`${o.kind}:${o.code ?? o.status}`] = (otherErrors[`${o.kind}:${o.code ?? o.status}`] ?? 0) + 1;
  const lat = ok.map((o) => o.latencyMs);
  const ttft = ok.map((o) => o.ttftMs ?? NaN).filter(Number.isFinite);
  const rej = rejected.map((o) => o.latencyMs);
  return {
    label,
    offeredRps: Math.round(offeredRps * 100) / 100,
    sent: outcomes.length,
    admitted: admitted.length,
    succeeded: ok.length,
    successRateAdmitted: admitted.length ? ok.length / admitted.length : 1,
    rejected: rejected.length,
    queueTimeouts: outcomes.filter((o) => o.kind === 'queue_timeout').length,
    otherErrors,
    hung: outcomes.filter((o) => o.kind === 'hung').length,
    latencyMs: { p50: pct(lat, 50), p95: pct(lat, 95), p99: pct(lat, 99) },
    ttftMs: { p50: pct(ttft, 50), p95: pct(ttft, 95), p99: pct(ttft, 99) },
    rejectionMs: { p50: pct(rej, 50), p99: pct(rej, 99), max: rej.length ? Math.max(...rej) : NaN },
    peakRssMiB: Math.round((peakRss / 1048576) * 10) / 10,
  };
}

/** Open loop: Poisson arrivals at `rps` for `seconds`, whatever the server does. */
async function openLoop(
  base: string,
  pid: number,
  rps: number,
  seconds: number,
  onRss?: (t: number, rss: number) => void,
): Promise<{ outcomes: Outcome[]; peakRss: number }> {
  const pending: Promise<Outcome>[] = [];
  let peakRss = 0;
  const t0 = performance.now();
  const sampler = setInterval(
    () => {
      const r = rssOf(pid);
      peakRss = Math.max(peakRss, r);
      onRss?.((performance.now() - t0) / 1000, r);
    },
    onRss ? 5000 : 200,
  );
  const end = t0 + seconds * 1000;
  let next = t0;
  while (next < end) {
    const now = performance.now();
    if (next > now) await sleep(next - now);
    pending.push(one(base));
    next += -Math.log(1 - Math.random()) * (1000 / rps);
  }
  const outcomes = await Promise.all(pending);
  clearInterval(sampler);
  peakRss = Math.max(peakRss, rssOf(pid));
  return { outcomes, peakRss };
}

/** Closed loop: `clients` users, each sending the next request when the last one ended. */
async function closedLoop(
  base: string,
  pid: number,
  clients: number,
  seconds: number,
): Promise<{ outcomes: Outcome[]; peakRss: number }> {
  const outcomes: Outcome[] = [];
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(pid))), 200);
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) outcomes.push(await one(base));
    }),
  );
  clearInterval(sampler);
  return { outcomes, peakRss };
}

const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');

function printTable(rows: StepResult[]): void {
  const head = [
    'step',
    'offered/s',
    'sent',
    'admitted',
    'ok% adm',
    '429',
    'q-timeout',
    'other err',
    'hung',
    'p50 ms',
    'p95 ms',
    'p99 ms',
    'ttft p50',
    'ttft p99',
    'rej p50',
    'rej p99',
    'peak RSS MiB',
  ];
  const lines = rows.map((r) => [
    r.label,
    f(r.offeredRps, 1),
    String(r.sent),
    String(r.admitted),
    f(r.successRateAdmitted * 100, 1),
    String(r.rejected),
    String(r.queueTimeouts),
    String(Object.values(r.otherErrors).reduce((a, b) => a + b, 0)),
    String(r.hung),
    f(r.latencyMs.p50),
    f(r.latencyMs.p95),
    f(r.latencyMs.p99),
    f(r.ttftMs.p50),
    f(r.ttftMs.p99),
    f(r.rejectionMs.p50, 1),
    f(r.rejectionMs.p99, 1),
    f(r.peakRssMiB, 1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  console.log(fmt(head));
  for (const l of lines) console.log(fmt(l));
  for (const r of rows)
    if (Object.keys(r.otherErrors).length) console.log(`  ${r.label}: ${JSON.stringify(r.otherErrors)}`);
}

async function main(): Promise<void> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = await startServer(port);
  const pid = child.pid!;
  try {
    // Baseline: the loopback floor (GET /health on the idle server).
    const health: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      const r = await request(base + '/health', { dispatcher });
      await r.body.dump();
      health.push(performance.now() - t);
    }
    const baseline = {
      healthP50Ms: pct(health, 50),
      healthP99Ms: pct(health, 99),
      nominalServiceMs: serviceMs,
      capacityRps: capacity,
      idleRssMiB: rssOf(pid) / 1048576,
    };
    console.log(
      `glimpse simulated engine: max-batch-size ${maxBatch}, max-queue ${args['max-queue']}, queue-timeout ${args['queue-timeout']} s, ` +
        `ttft ${ttftMs} ms, ${tps} tok/s, ${answerTokens} tokens → service ${serviceMs.toFixed(0)} ms, capacity ${capacity.toFixed(2)} req/s`,
    );
    console.log(
      `baseline: GET /health p50 ${baseline.healthP50Ms.toFixed(2)} ms, p99 ${baseline.healthP99Ms.toFixed(2)} ms; idle RSS ${baseline.idleRssMiB.toFixed(1)} MiB`,
    );

    const results: Record<string, unknown> = {
      when: new Date().toISOString(),
      config: { maxBatch, maxQueue: num('max-queue'), queueTimeout: num('queue-timeout'), ttftMs, tps, answerTokens },
      baseline,
    };
    if (args.soak) {
      const seconds = Number(args.soak);
      const rps = capacity * num('soak-load');
      console.log(`soak: ${seconds} s at ${num('soak-load')}x capacity (${rps.toFixed(1)} req/s); RSS every 5 s`);
      const rss: Array<{ t: number; rssMiB: number }> = [];
      const { outcomes, peakRss } = await openLoop(base, pid, rps, seconds, (t, r) => {
        rss.push({ t: Math.round(t), rssMiB: Math.round((r / 1048576) * 10) / 10 });
        if (rss.length % 12 === 0) console.log(`  t=${Math.round(t)} s  RSS ${(r / 1048576).toFixed(1)} MiB`);
      });
      const step = summarize(`soak ${num('soak-load')}x`, rps, outcomes, peakRss);
      printTable([step]);
      const third = Math.max(1, Math.floor(rss.length / 3));
      const avg = (xs: Array<{ rssMiB: number }>) => xs.reduce((a, b) => a + b.rssMiB, 0) / Math.max(1, xs.length);
      const firstThird = avg(rss.slice(0, third));
      const lastThird = avg(rss.slice(-third));
      console.log(
        `RSS: first third avg ${firstThird.toFixed(1)} MiB, last third avg ${lastThird.toFixed(1)} MiB, growth ${(lastThird - firstThird).toFixed(1)} MiB`,
      );
      Object.assign(results, { mode: 'soak', seconds, step, rss, rssGrowthMiB: lastThird - firstThird });
    } else {
      const seconds = num('step-seconds');
      const rows: StepResult[] = [];
      const c5 = await closedLoop(base, pid, 5, seconds);
      rows.push(summarize('5 clients', NaN, c5.outcomes, c5.peakRss));
      for (const m of String(args.steps).split(',').map(Number)) {
        const rps = capacity * m;
        const { outcomes, peakRss } = await openLoop(base, pid, rps, seconds);
        rows.push(summarize(`${m}x`, rps, outcomes, peakRss));
        await sleep(300);
      }
      printTable(rows);
      Object.assign(results, { mode: 'sweep', stepSeconds: seconds, steps: rows });
    }
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    const out = fileURLToPath(
      new URL(`./results/load-${args.soak ? 'soak' : 'sweep'}-${Date.now()}.json`, import.meta.url),
    );
    writeFileSync(out, JSON.stringify(results, null, 2));
    console.log(`wrote ${out}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await dispatcher.close();
  }
}

await main();
