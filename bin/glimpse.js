#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/src/cli/index.js', import.meta.url));
if (!existsSync(entry)) {
  console.error('glimpse is not built yet: run `npm install` (or `npm run build`) in the glimpse folder first.');
  process.exit(1);
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
