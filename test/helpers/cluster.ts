/** `glimpse serve --workers N` as a real process tree, for tests: start it, find its workers, ask on fresh connections. */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bench/util.js';

const entry = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
const ASK_TIMEOUT_MS = 15_000;

export interface Answer {
  status: number;
  /** The worker that answered (X-Glimpse-Worker). */
  worker: string;
  body: string;
}

export interface RunningCluster {
  child: ChildProcess;
  base: string;
  exited: Promise<number | null>;
  logs(): string;
  /** Worker number => pid, as the primary logged them when each started listening (the latest per number). */
  pids(): Map<string, number>;
  /** One request on a connection of its own, so the primary hands it to the next worker. */
  ask(path: string, init?: { method?: string; body?: string }): Promise<Answer>;
  /** Like ask, but returns once the headers are in; the body arrives on `body`. */
  open(path: string, body: string): Promise<{ status: number; worker: string; body: Promise<string>; abort(): void }>;
  stop(): Promise<void>;
}

export async function startCluster(args: string[], env: Record<string, string> = {}): Promise<RunningCluster> {
  const port = await freePort();
  // Debug logs: the primary says which pid each worker has when it starts listening.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', entry, 'serve', '--port', String(port), '--log-level', 'debug', ...args],
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let logs = '';
  child.stdout.on('data', (d) => (logs += d));
  child.stderr.on('data', (d) => (logs += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;

  const open: RunningCluster['open'] = (path, body) =>
    new Promise((resolve, reject) => {
      const req = request(
        base + path,
        { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          const done = new Promise<string>((ok) => {
            res.on('end', () => ok(text));
            res.on('close', () => ok(text));
          });
          resolve({
            status: res.statusCode!,
            worker: String(res.headers['x-glimpse-worker'] ?? ''),
            body: done,
            abort: () => req.destroy(),
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const ask: RunningCluster['ask'] = (path, init = {}) =>
    new Promise((resolve, reject) => {
      const req = request(
        base + path,
        {
          method: init.method ?? 'GET',
          agent: false,
          headers: init.body ? { 'content-type': 'application/json' } : {},
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () =>
            resolve({ status: res.statusCode!, worker: String(res.headers['x-glimpse-worker'] ?? ''), body }),
          );
        },
      );
      // A connection the primary handed to a worker as it died is never answered: fail it, do not hang.
      req.setTimeout(ASK_TIMEOUT_MS, () => req.destroy(new Error(`no answer to ${path} in ${ASK_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(init.body);
    });

  const cluster: RunningCluster = {
    child,
    base,
    exited,
    logs: () => logs,
    pids() {
      const out = new Map<string, number>();
      for (const line of logs.split('\n')) {
        if (!line.includes('"worker listening"')) continue;
        const rec = JSON.parse(line) as { worker: number; pid: number };
        out.set(String(rec.worker), rec.pid);
      }
      return out;
    },
    ask,
    open,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  try {
    for (let i = 0; ; i++) {
      const ready = await ask('/ready').then(
        (a) => a.status === 200,
        () => false,
      );
      if (ready && cluster.pids().size >= Number(args[args.indexOf('--workers') + 1])) break;
      if (child.exitCode !== null || i > 2400)
        throw new Error('glimpse --workers did not become ready: ' + logs.slice(-4000));
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** Ask until every one of `workers` has answered (round robin hands connections out in turn, so a few asks suffice). */
export async function answeredBy(cluster: RunningCluster, workers: string[], path = '/livez'): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < 100 && workers.some((w) => !seen.has(w)); i++) seen.add((await cluster.ask(path)).worker);
  return seen;
}
