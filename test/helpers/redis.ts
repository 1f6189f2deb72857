/** A real redis-server (Debian's package) on a free loopback port, for one test file. */
import { spawn, spawnSync } from 'node:child_process';
import { freePort } from '../../bench/util.js';

export const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

export interface RunningRedis {
  url: string;
  port: number;
  stop(): void;
  /** Kill it outright (SIGKILL, as a crash), resolving once the process is gone and its port free. */
  kill(): Promise<void>;
}

/** On a free port, or on `port` (a Redis brought back where it was). */
export async function startRedis(opts: { port?: number } = {}): Promise<RunningRedis> {
  const port = opts.port ?? (await freePort());
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((r) => redis.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    redis.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    redis.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    stop: () => void redis.kill('SIGTERM'),
    kill: async () => {
      redis.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * For a describe block: one redis-server for the block, an admin connection, every key flushed
 * before each test, and the glimpse instances a test started (push them onto `servers`) closed after it.
 */
export function redisPerSuite<S extends { close(): Promise<void> }>(hooks: {
  before: (fn: () => Promise<void>) => void;
  after: (fn: () => Promise<void>) => void;
  beforeEach: (fn: () => Promise<void>) => void;
  afterEach: (fn: () => Promise<void>) => void;
}): { redis: () => RunningRedis; admin: () => import('ioredis').Redis; servers: S[] } {
  let redis: RunningRedis | undefined;
  let admin: import('ioredis').Redis | undefined;
  const servers: S[] = [];
  hooks.before(async () => {
    redis = await startRedis();
    const { Redis } = await import('ioredis');
    admin = new Redis(redis.url);
    // A test may stop the server on purpose; the admin connection's reconnect errors are expected then.
    admin.on('error', () => {});
  });
  hooks.after(async () => {
    admin?.disconnect();
    redis?.stop();
  });
  hooks.beforeEach(async () => {
    await admin!.flushdb();
  });
  hooks.afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  return { redis: () => redis!, admin: () => admin!, servers };
}
