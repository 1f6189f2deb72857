/**
 * Run the shipped deploy/nginx/glimpse.conf in a real nginx (Debian's package) on a free loopback
 * port, in front of a glimpse on another port. Only the addresses are rewritten; every other line
 * is the file as users install it.
 */
import { readFileSync } from 'node:fs';
import { NGINX, startNginxWith, type RunningNginx as Running } from '../../bench/nginx.js';
import { freePort } from '../../bench/util.js';

export { NGINX };

const SHIPPED = new URL('../../deploy/nginx/glimpse.conf', import.meta.url).pathname;

export interface RunningNginx extends Running {
  /** The config nginx runs (the shipped file with loopback addresses). */
  conf: string;
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
  const port = await freePort();
  const conf = renderConf(glimpsePort, port);
  return { ...(await startNginxWith(conf, port)), conf };
}
