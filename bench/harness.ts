/**
 * What bench/pool and bench/proxy share: a glimpse process on a free port, a closed-loop client
 * (each of N clients sends its next request when its last one ended, bounded by time and count),
 * percentiles and a plain table.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { freePort, sleep } from './util.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = fileURLToPath(new URL('../bin/glimpse.js', import.meta.url));

/**
 * Compile src/ to dist/ (the TypeScript step of `npm run build`), so glimpse runs as installed, from
 * bin/glimpse.js: under tsx its module loader thread and source-map hooks would be in every profile.
 */
export function buildGlimpse(): void {
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.json'],
    { cwd: root, stdio: 'inherit' },
  );
  // tsc emits despite type errors; a benchmark of a tree mid-change can still run what it emitted.
  if (r.status !== 0 && !existsSync(new URL('../dist/src/cli/index.js', import.meta.url)))
    throw new Error('tsc -p tsconfig.json failed');
  if (r.status !== 0) console.error('warning: tsc reported type errors; running the JavaScript it emitted');
}

export interface RunningProcess {
  url: string;
  pid: number;
  /** From spawn to ready (a profile's samples before this are start-up, not serving). */
  startupMs?: number;
  stop(): Promise<void>;
}

/** `glimpse serve` from dist/ (see buildGlimpse) with these flags, a free port and warn-level logs; ready when /ready is 200. */
export async function startGlimpse(
  flags: string[],
  opts: { nodeFlags?: string[]; env?: NodeJS.ProcessEnv; bin?: string } = {},
): Promise<RunningProcess> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeFlags ?? []),
      opts.bin ?? bin,
      'serve',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--log-level',
      'warn',
      ...flags,
    ],
    {
      cwd: root,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`glimpse exited with ${child.exitCode}`);
    if (
      await fetch(url + '/ready').then(
        (r) => r.status === 200,
        () => false,
      )
    ) {
      return {
        url,
        pid: child.pid!,
        startupMs: performance.now() - t0,
        async stop() {
          if (child.exitCode !== null) return;
          child.kill('SIGTERM');
          await once(child, 'exit');
        },
      };
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error('glimpse did not become ready');
}

export interface Answer {
  ok: boolean;
  start: number;
  end: number;
  ms: number;
  ttftMs?: number;
  /** ms glimpse held the request in its queue (its `: admitted waited_ms=` comment); undefined when not queued. */
  queueMs?: number;
  error?: string;
}

export interface LoopOptions {
  clients: number;
  seconds: number;
  maxRequests: number;
  stream: boolean;
}

/** One request: a streamed answer counts when it ends with [DONE] and no error event; a whole one on 200. */
async function one(url: string, body: string, stream: boolean, dispatcher: Agent): Promise<Answer> {
  const start = performance.now();
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      dispatcher,
    });
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      const end = performance.now();
      return { ok: false, start, end, ms: end - start, error: `${res.statusCode} ${text.slice(0, 120)}` };
    }
    if (!stream) {
      const text = await res.body.text();
      const end = performance.now();
      return {
        ok: text.includes('"choices"'),
        start,
        end,
        ms: end - start,
        error: text.includes('"choices"') ? undefined : text.slice(0, 120),
      };
    }
    let ttftMs: number | undefined;
    let queueMs: number | undefined;
    let tail = '';
    let error: string | undefined;
    res.body.setEncoding('utf8');
    for await (const chunk of res.body as AsyncIterable<string>) {
      if (ttftMs === undefined && /"content":"[^"]/.test(chunk)) ttftMs = performance.now() - start;
      const admitted = queueMs === undefined ? /: admitted waited_ms=(\d+)/.exec(chunk) : null;
      if (admitted) queueMs = Number(admitted[1]);
      if (chunk.includes('"error"')) error = chunk.slice(0, 160);
      tail = (tail + chunk).slice(-64);
    }
    const end = performance.now();
    if (!error && !tail.includes('data: [DONE]')) error = 'stream ended without [DONE]';
    return { ok: !error, start, end, ms: end - start, ttftMs, queueMs, error };
  } catch (err) {
    const end = performance.now();
    return { ok: false, start, end, ms: end - start, error: (err as Error).message };
  }
}

/** N clients in a closed loop for `seconds` or until `maxRequests` were sent, whichever comes first. */
export async function closedLoop(url: string, bodyFor: () => string, o: LoopOptions): Promise<Answer[]> {
  const dispatcher = new Agent({ connections: o.clients, pipelining: 1, keepAliveTimeout: 30_000 });
  const answers: Answer[] = [];
  const end = performance.now() + o.seconds * 1000;
  let sent = 0;
  await Promise.all(
    Array.from({ length: o.clients }, async () => {
      while (performance.now() < end && sent < o.maxRequests) {
        sent++;
        answers.push(await one(url, bodyFor(), o.stream, dispatcher));
      }
    }),
  );
  await dispatcher.close();
  return answers;
}

/** Answers per second over the span from the first start to the last end. */
export function throughput(answers: Answer[]): number {
  const ok = answers.filter((a) => a.ok);
  if (!ok.length) return 0;
  let first = Infinity;
  let last = -Infinity;
  for (const a of answers) {
    first = Math.min(first, a.start);
    last = Math.max(last, a.end);
  }
  return ok.length / ((last - first) / 1000);
}

export function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function printTable(head: string[], lines: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(fmt(head));
  for (const l of lines) console.log(fmt(l));
}
