/** A real redis-server (Debian's package) on a free loopback port, for one test file. */
import { spawn, spawnSync } from 'node:child_process';
import { freePort } from '../../bench/util.js';

export const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

export interface RunningRedis {
  url: string;
  stop(): void;
}

export async function startRedis(): Promise<RunningRedis> {
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    redis.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    redis.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  return { url: `redis://127.0.0.1:${port}/0`, stop: () => void redis.kill('SIGTERM') };
}
