/**
 * A Docker daemon of the tests' own (Debian's docker.io) on a private socket, and a stand-in for
 * the official Node.js base image, which cannot be pulled here: Debian bookworm (what the
 * node:*-bookworm-slim images are) made with mmdebstrap from Debian's own packages, plus this
 * machine's Node.js and npm in /usr/local and a `node` user with uid 1000, as those images have.
 * The daemon's state lives in /var/tmp/glimpse-test-docker, so later runs on one machine reuse
 * the base image and build cache; a fresh machine builds both (about two minutes).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const STATE = '/var/tmp/glimpse-test-docker';
const SOCKET = join(STATE, 'docker.sock');

const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Why the container tests cannot run on this machine, or false when they can. */
export function dockerMissing(): string | false {
  if (process.getuid?.() !== 0) return 'starting a Docker daemon needs root';
  for (const [cmd, pkg] of [
    ['dockerd', 'docker.io'],
    ['docker', 'docker.io'],
    ['mmdebstrap', 'mmdebstrap'],
  ] as const) {
    if (!have(cmd)) return `${cmd} not installed (Debian package ${pkg})`;
  }
  return false;
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Docker {
  /** Runs the docker client against this daemon; never throws. */
  run(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<Result>;
  /** Like run, but fails with the output when the command does. */
  ok(args: string[], opts?: { timeoutMs?: number }): Promise<string>;
  /** The base image tag standing in for node:*-bookworm-slim; built on first use. */
  baseImage(): Promise<string>;
  stop(): Promise<void>;
}

function runCommand(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  input?: string,
): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + String(err) });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A command that exits without reading its input (most do) closes the pipe: EPIPE on the
    // write is no failure of it (its exit code says how it went), and unheard it would crash the run.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** Stops a daemon an earlier run left behind (killed test runner), so its socket and state are free. */
function stopLeftover(): void {
  const pidFile = join(STATE, 'dockerd.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    spawnSync('sleep', ['0.1']);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

export async function startDocker(): Promise<Docker> {
  mkdirSync(STATE, { recursive: true });
  stopLeftover();
  rmSync(SOCKET, { force: true });
  const log = openSync(join(STATE, 'dockerd.log'), 'w');
  // No bridge and no iptables rules: the host's network stays as it is; containers use the host's
  // network (--network host) and listen on free loopback ports.
  const daemon: ChildProcess = spawn(
    'dockerd',
    [
      '--host',
      `unix://${SOCKET}`,
      '--data-root',
      join(STATE, 'data'),
      '--exec-root',
      join(STATE, 'exec'),
      '--pidfile',
      join(STATE, 'dockerd.pid'),
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
    ],
    { stdio: ['ignore', log, log] },
  );
  const env = { ...process.env, DOCKER_HOST: `unix://${SOCKET}`, DOCKER_CLI_HINTS: 'false' };
  const run: Docker['run'] = (args, opts = {}) =>
    runCommand('docker', args, env, opts.timeoutMs ?? 120_000, opts.input);
  const ok: Docker['ok'] = async (args, opts) => {
    const r = await run(args, opts);
    if (r.code !== 0)
      throw new Error(`docker ${args.join(' ')} exited ${r.code}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    return r.stdout.trim();
  };
  const deadline = Date.now() + 60_000;
  while ((await run(['version'], { timeoutMs: 10_000 })).code !== 0) {
    if (daemon.exitCode !== null || Date.now() > deadline) {
      daemon.kill('SIGKILL');
      throw new Error(`dockerd did not start:\n${readFileSync(join(STATE, 'dockerd.log'), 'utf8').slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }

  const baseImage = async (): Promise<string> => {
    const tag = `glimpse-test/node:${process.versions.node}-bookworm`;
    if ((await run(['image', 'inspect', tag])).code === 0) return tag;
    const tar = join(STATE, 'base.tar');
    const npmDir = join(process.execPath, '../../lib/node_modules/npm');
    const hooks = [
      `copy-in ${process.execPath} /usr/local/bin`,
      'mkdir -p "$1/usr/local/lib/node_modules/npm"',
      `sync-in ${npmDir} /usr/local/lib/node_modules/npm`,
      'chroot "$1" sh -c "ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/bash node"',
    ];
    const changes = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["node"]'];
    // Where this machine reaches the npm registry through a TLS proxy with its own CA, the build
    // inside the image needs that CA as well (users behind such a proxy pass it the same way).
    const extraCa = process.env.NODE_EXTRA_CA_CERTS;
    if (extraCa && existsSync(extraCa)) {
      hooks.push(`upload ${extraCa} /usr/local/share/glimpse-test-extra-ca.pem`);
      changes.push('ENV NODE_EXTRA_CA_CERTS=/usr/local/share/glimpse-test-extra-ca.pem');
    }
    const made = await runCommand(
      'mmdebstrap',
      [
        '--quiet',
        '--variant=minbase',
        '--include=ca-certificates',
        ...hooks.map((h) => `--customize-hook=${h}`),
        'bookworm',
        tar,
      ],
      process.env,
      10 * 60_000,
    );
    if (made.code !== 0) throw new Error(`mmdebstrap failed:\n${made.stderr.slice(-3000)}`);
    try {
      await ok(['import', ...changes.flatMap((c) => ['--change', c]), tar, tag], { timeoutMs: 5 * 60_000 });
    } finally {
      rmSync(tar, { force: true });
    }
    return tag;
  };

  return {
    run,
    ok,
    baseImage,
    async stop() {
      if (daemon.exitCode !== null) return;
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      const timer = setTimeout(() => daemon.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
