/**
 * bench/proxy: what one hop in front of a GPU server costs. A zero-latency vLLM-shaped upstream
 * (bench/pool/replica-sim.ts --zero-latency: answers at once, vLLM's wire format) is reached
 * directly, through nginx (one worker), through the FastAPI + uvicorn + httpx wrapper users write
 * (bench/proxy/fastapi_proxy.py, one process), and through glimpse (one process; and
 * `--workers 2` where that flag exists), stream and not, at 1 and 32 connections.
 *
 *   npm run bench:proxy                      # 5 s per cell
 *   npm run bench:proxy -- --seconds 10 --targets direct,glimpse
 *   npm run bench:proxy -- --profile         # also: glimpse under --cpu-prof, top frames printed
 *   npm run bench:proxy -- --targets direct,glimpse,glimpse-baseline --baseline-bin /tmp/old/bin/glimpse.js
 *
 * Every request samples (temperature 0.8) so glimpse's answer cache does not serve it. The client is
 * one Node process on the same 2 cores: the direct and nginx rows are bounded by it, the others by
 * the proxy. FastAPI needs python3 with fastapi, uvicorn, httpx (PYTHON=path picks the interpreter;
 * the row is skipped, and says so, without them). Prints a table; writes JSON to bench/results/.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  buildGlimpse,
  closedLoop,
  pct,
  printTable,
  startGlimpse,
  throughput,
  type RunningProcess,
} from '../harness.js';
import { startNginxWith } from '../nginx.js';
import { freePort, sleep } from '../util.js';
import { summarizeProfile } from './profile.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    'max-requests': { type: 'string', default: '100000' },
    connections: { type: 'string', default: '1,32' },
    targets: { type: 'string', default: 'direct,nginx,fastapi,glimpse,glimpse-workers-2' },
    modes: { type: 'string', default: 'json,stream' },
    profile: { type: 'boolean', default: false },
    'baseline-bin': {
      type: 'string',
      description:
        "another build's bin/glimpse.js, measured as target glimpse-baseline (e.g. a worktree of an older commit)",
    },
  },
});
const MODEL = 'zai-org/GLM-4.6V-Flash';
const root = fileURLToPath(new URL('../..', import.meta.url));
const python =
  process.env.PYTHON ??
  (spawnSync('test', ['-x', `${root}bench/tmp/venv/bin/python`]).status === 0
    ? `${root}bench/tmp/venv/bin/python`
    : 'python3');

async function startUpstream(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(new URL('../pool/replica-sim.ts', import.meta.url)),
      '--replicas',
      '1',
      '--zero-latency',
      '--answer-tokens',
      '16',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  for await (const c of child.stdout) {
    out += c;
    if (out.includes('\n')) break;
  }
  return { child, url: (JSON.parse(out) as { urls: string[] }).urls[0] };
}

async function startFastapi(upstream: string): Promise<RunningProcess | string> {
  const probe = spawnSync(python, ['-c', 'import fastapi, uvicorn, httpx']);
  if (probe.status !== 0) return `skipped: ${python} lacks fastapi, uvicorn or httpx`;
  const port = await freePort();
  const child = spawn(
    python,
    [
      '-m',
      'uvicorn',
      'fastapi_proxy:app',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--no-access-log',
      '--log-level',
      'warning',
    ],
    {
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      env: { ...process.env, UPSTREAM: upstream },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (
      await fetch(url + '/health').then(
        (r) => r.ok,
        () => false,
      )
    ) {
      return { url, pid: child.pid!, stop: async () => void (child.kill('SIGTERM'), await once(child, 'exit')) };
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  return 'skipped: uvicorn did not start';
}

async function startNginx(upstream: string): Promise<RunningProcess> {
  const port = await freePort();
  const host = new URL(upstream).host;
  const body = `  upstream vllm { server ${host}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://vllm; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }`;
  const n = await startNginxWith(body, port, { workers: 1, probePath: '/v1/models', accessLog: false });
  return { url: n.url, pid: n.pid, stop: n.stop };
}

/** Does this glimpse have a --workers flag (N server processes on one port)? */
function hasWorkersFlag(): boolean {
  const help = spawnSync(process.execPath, ['--import', 'tsx', `${root}src/cli/main.ts`, 'serve', '--help'], {
    cwd: root,
    encoding: 'utf8',
  });
  return /(^|\s)--workers\s/m.test(help.stdout + help.stderr);
}

async function startTarget(
  target: string,
  upstream: string,
  nodeFlags: string[] = [],
): Promise<RunningProcess | string> {
  const glimpseFlags = ['--engine', 'upstream', '--upstream', upstream, '--upstream-model', MODEL];
  switch (target) {
    case 'direct':
      return { url: upstream.replace(/\/v1$/, ''), pid: 0, stop: async () => {} };
    case 'nginx':
      return await startNginx(upstream);
    case 'fastapi':
      return await startFastapi(upstream);
    case 'glimpse':
      return await startGlimpse(glimpseFlags, { nodeFlags });
    case 'glimpse-baseline':
      return args['baseline-bin']
        ? await startGlimpse(glimpseFlags, { bin: args['baseline-bin'] })
        : 'skipped: no --baseline-bin';
    case 'glimpse-workers-2':
      return hasWorkersFlag()
        ? await startGlimpse([...glimpseFlags, '--workers', '2'])
        : 'pending: glimpse serve has no --workers flag yet';
    default:
      throw new Error(`unknown target ${target}`);
  }
}

interface Cell {
  target: string;
  mode: string;
  connections: number;
  answersPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  firstError?: string;
}

const bodyJson = (stream: boolean) =>
  JSON.stringify({
    model: MODEL,
    stream,
    temperature: 0.8,
    max_tokens: 16,
    messages: [{ role: 'user', content: 'Say something short.' }],
  });

async function measure(url: string, target: string, mode: string, connections: number): Promise<Cell> {
  const stream = mode === 'stream';
  const body = bodyJson(stream);
  const loop = { clients: connections, stream, maxRequests: Number(args['max-requests']) };
  await closedLoop(url + '/v1/chat/completions', () => body, { ...loop, seconds: 1 }); // warm up connections and JIT
  const answers = await closedLoop(url + '/v1/chat/completions', () => body, {
    ...loop,
    seconds: Number(args.seconds),
  });
  const ok = answers.filter((a) => a.ok).map((a) => a.ms);
  return {
    target,
    mode,
    connections,
    answersPerSecond: throughput(answers),
    p50Ms: pct(ok, 50),
    p99Ms: pct(ok, 99),
    failed: answers.length - ok.length,
    firstError: answers.find((a) => !a.ok)?.error,
  };
}

async function profileGlimpse(upstream: string): Promise<ReturnType<typeof summarizeProfile>> {
  const dir = `${root}bench/tmp/prof-${Date.now()}`;
  mkdirSync(dir, { recursive: true });
  const g = (await startTarget('glimpse', upstream, ['--cpu-prof', '--cpu-prof-dir', dir])) as RunningProcess;
  await measure(g.url, 'glimpse', 'json', 32);
  await measure(g.url, 'glimpse', 'stream', 32);
  await g.stop();
  return summarizeProfile(dir, (g.startupMs ?? 0) + 1000); // start-up and the first warm-up second left out
}

async function main(): Promise<void> {
  buildGlimpse();
  const { child: up, url: upstream } = await startUpstream();
  const cells: Cell[] = [];
  const notes: Record<string, string> = {};
  const load0 = loadavg()[0];
  try {
    for (const target of args.targets.split(',')) {
      const t = await startTarget(target, upstream);
      if (typeof t === 'string') {
        notes[target] = t;
        console.error(`${target}: ${t}`);
        continue;
      }
      for (const mode of args.modes.split(','))
        for (const c of args.connections.split(',').map(Number)) {
          const cell = await measure(t.url, target, mode, c);
          cells.push(cell);
          console.error(
            `${target} ${mode} x${c}: ${cell.answersPerSecond.toFixed(0)}/s p50 ${cell.p50Ms.toFixed(2)} ms`,
          );
        }
      await t.stop();
    }
    const profile = args.profile ? await profileGlimpse(upstream) : undefined;
    const direct = (mode: string, c: number) =>
      cells.find((x) => x.target === 'direct' && x.mode === mode && x.connections === c);
    console.log(
      `proxy: zero-latency upstream (16 tokens), closed loop, ${args.seconds} s per cell; load average ${load0.toFixed(2)} at start`,
    );
    printTable(
      ['target', 'mode', 'conns', 'answers/s', 'p50 ms', 'p99 ms', 'added p50 ms', 'failed'],
      cells.map((x) => [
        x.target,
        x.mode,
        String(x.connections),
        x.answersPerSecond.toFixed(0),
        x.p50Ms.toFixed(2),
        x.p99Ms.toFixed(2),
        x.target === 'direct' ? '-' : (x.p50Ms - (direct(x.mode, x.connections)?.p50Ms ?? NaN)).toFixed(2),
        String(x.failed),
      ]),
    );
    for (const [t, n] of Object.entries(notes)) console.log(`  ${t}: ${n}`);
    for (const x of cells)
      if (x.failed) console.log(`  ${x.target} ${x.mode} x${x.connections}: first failure ${x.firstError}`);
    const rate = (t: string, mode: string, c: number) =>
      cells.find((x) => x.target === t && x.mode === mode && x.connections === c)?.answersPerSecond ?? NaN;
    const verdict = Object.fromEntries(
      args.modes.split(',').map((mode) => [
        mode,
        {
          glimpseVsFastapi32: rate('glimpse', mode, 32) / rate('fastapi', mode, 32),
          addedP50Ms1:
            (cells.find((x) => x.target === 'glimpse' && x.mode === mode && x.connections === 1)?.p50Ms ?? NaN) -
            (direct(mode, 1)?.p50Ms ?? NaN),
          workers2VsOne32: rate('glimpse-workers-2', mode, 32) / rate('glimpse', mode, 32),
        },
      ]),
    );
    for (const [mode, v] of Object.entries(verdict))
      console.log(
        `${mode}: glimpse ${v.glimpseVsFastapi32.toFixed(2)}x FastAPI at 32 (target >= 5), added p50 at 1 ${v.addedP50Ms1.toFixed(2)} ms (target <= 0.3), --workers 2 ${Number.isFinite(v.workers2VsOne32) ? v.workers2VsOne32.toFixed(2) + 'x' : (notes['glimpse-workers-2'] ?? '-')} (target >= 1.6)`,
      );
    if (profile) {
      console.log(`glimpse CPU profile (${profile.file}, ${profile.totalMs.toFixed(0)} ms sampled): top self time`);
      for (const f of profile.top) console.log(`  ${f.percent.toFixed(1).padStart(5)} %  ${f.name}  ${f.where}`);
      console.log('by file or package:');
      for (const f of profile.byFile) console.log(`  ${f.percent.toFixed(1).padStart(5)} %  ${f.where}`);
    }
    mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
    const out = fileURLToPath(new URL(`../results/proxy-${Date.now()}.json`, import.meta.url));
    writeFileSync(
      out,
      JSON.stringify(
        { when: new Date().toISOString(), loadAverageAtStart: load0, config: args, cells, notes, verdict, profile },
        null,
        2,
      ),
    );
    console.log(`wrote ${out}`);
  } finally {
    up.kill('SIGTERM');
    await once(up, 'exit');
  }
}

await main();
