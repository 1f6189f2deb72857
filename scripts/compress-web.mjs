#!/usr/bin/env node
// Writes .br and .gz next to each text asset in web/dist so the server can send them as they are
// (@fastify/static preCompressed) instead of compressing on every request.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

const dist = new URL('../web/dist/', import.meta.url).pathname;
const TEXT = /\.(js|css|html|svg|json|txt|map)$/;

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

let before = 0;
let after = 0;
for (const file of walk(dist)) {
  if (!TEXT.test(file)) continue;
  const buf = readFileSync(file);
  if (buf.length < 512) continue;
  const br = brotliCompressSync(buf, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: buf.length },
  });
  writeFileSync(`${file}.br`, br);
  writeFileSync(`${file}.gz`, gzipSync(buf, { level: 9 }));
  before += buf.length;
  after += br.length;
}
console.log(`web/dist: ${(before / 1024).toFixed(1)} KB of text assets, ${(after / 1024).toFixed(1)} KB with brotli`);
