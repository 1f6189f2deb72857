#!/usr/bin/env node
// libuv's thread pool (default 4) is shared by sharp's image work, DNS lookups for image URLs and
// file I/O; under image-heavy load 4 threads queue URL fetches behind decodes. Must be set before
// anything uses the pool, so here, first.
process.env.UV_THREADPOOL_SIZE ??= '16';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/src/cli/index.js', import.meta.url));
if (!existsSync(entry)) {
  console.error('glimpse is not built yet: run `npm install` (or `npm run build`) in the glimpse folder first.');
  process.exit(1);
}
// A reload (SIGHUP) during start must not end the process (Node's default): taken from here on,
// before the rest of glimpse loads, and done once the server is up (src/cli/reload-signal.ts).
const { holdReloads } = await import(new URL('../dist/src/cli/reload-signal.js', import.meta.url).href);
holdReloads();
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
