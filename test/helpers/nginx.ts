/**
 * Run the shipped deploy/nginx/glimpse.conf in a real nginx (Debian's package) on a free loopback
 * port, in front of a glimpse on another port. Only the addresses are rewritten; every other line
 * is the file as users install it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/util.js';

export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));

const SHIPPED = new URL('../../deploy/nginx/glimpse.conf', import.meta.url).pathname;

export interface RunningNginx {
  url: string;
  port: number;
  /** The config nginx runs (the shipped file with loopback addresses). */
  conf: string;
  errorLog(): string;
  stop(): Promise<void>;
}

/** Replace exactly one occurrence, so a reshaped config fails here rather than running unrendered. */
function replaceOnce(text: string, from: string, to: string): string {
  const n = text.split(from).length - 1;
  if (n !== 1) throw new Error(`deploy/nginx/glimpse.conf: expected "${from}" once, found it ${n} times`);
  return text.replace(from, to);
}

/** The shipped config with glimpse at 127.0.0.1:glimpsePort and nginx listening on 127.0.0.1:port only. */
export function renderConf(glimpsePort: number, port: number): string {
  let conf = readFileSync(SHIPPED, 'utf8');
  conf = replaceOnce(conf, 'server 127.0.0.1:8080;', `server 127.0.0.1:${glimpsePort};`);
  conf = replaceOnce(conf, '    listen 80;\n', `    listen 127.0.0.1:${port};\n`);
  conf = replaceOnce(conf, '    listen [::]:80;\n', '');
  return conf;
}

export async function startNginx(glimpsePort: number): Promise<RunningNginx> {
  if (!NGINX) throw new Error('nginx is not installed (Debian package nginx)');
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-nginx-'));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  const port = await freePort();
  const conf = renderConf(glimpsePort, port);
  writeFileSync(join(dir, 'glimpse.conf'), conf);
  // As root, nginx would drop its workers to 'nobody', who cannot write this private temp dir.
  const user = process.getuid?.() === 0 ? 'user root root;' : '';
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${user}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  default_type application/octet-stream;
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/glimpse.conf;
}
`,
  );
  const check = spawnSync(NGINX, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t refused the config:\n${check.stderr}`);
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    try {
      await fetch(url + '/health');
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx did not start listening: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    url,
    port,
    conf,
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
