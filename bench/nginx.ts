/**
 * Run Debian's nginx on loopback with a given http{} body, in a private temp prefix: for the tests
 * (the shipped deploy/nginx/glimpse.conf) and for the benchmarks (nginx as the baseline proxy).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));

export interface RunningNginx {
  url: string;
  port: number;
  pid: number;
  errorLog(): string;
  stop(): Promise<void>;
}

/**
 * Start nginx listening on 127.0.0.1:port with `httpBody` inside http{}; resolves once `probePath`
 * answers. `workers` is worker_processes ('auto' is one per core).
 */
export async function startNginxWith(
  httpBody: string,
  port: number,
  opts: { workers?: number | 'auto'; probePath?: string; accessLog?: boolean } = {},
): Promise<RunningNginx> {
  if (!NGINX) throw new Error('nginx is not installed (Debian package nginx)');
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-nginx-'));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  // As root, nginx would drop its workers to 'nobody', who cannot write this private temp dir.
  const user = process.getuid?.() === 0 ? 'user root root;' : '';
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${user}
worker_processes ${opts.workers ?? 1};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log ${opts.accessLog === false ? 'warn' : 'info'};
events { worker_connections 4096; }
http {
  default_type application/octet-stream;
  access_log ${opts.accessLog === false ? 'off' : `${dir}/access.log`};
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${httpBody}
}
`,
  );
  const check = spawnSync(NGINX, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t refused the config:\n${check.stderr}`);
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    try {
      await fetch(url + (opts.probePath ?? '/health'));
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx did not start listening: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    url,
    port,
    pid: child.pid!,
    errorLog: () => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGQUIT');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
