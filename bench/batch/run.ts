/**
 * bench/batch: lines per second through the Batch API (upload, create, every line a job on the
 * embedded store, output file written) against the same lines sent directly to
 * /v1/chat/completions at the same concurrency, on one glimpse (simulated engine) in this process.
 * Target: the batch path at >= 0.9x the direct one.
 *
 *   npm run bench:batch                                   # 200 lines, concurrency 8
 *   npm run bench:batch -- --lines 1000 --concurrency 16 --tokens 32 --rounds 3
 *   npm run bench:batch -- --redis-url redis://127.0.0.1:6379/0   # the Redis store instead
 *
 * The batch time runs from the upload to the batch reading `completed` (polled every 25 ms), so it
 * includes validation, queueing, the store's writes and the output file. Jobs get every engine
 * slot (jobs.interactiveReserve 0) and one worker per concurrent line, as the direct side gets one
 * connection per line. Prints a table; writes JSON to bench/results/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { createServer } from '../../src/server/index.js';
import { printTable } from '../harness.js';
import { sleep } from '../util.js';

const { values: args } = parseArgs({
  options: {
    lines: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    tokens: { type: 'string', default: '16' },
    'ttft-ms': { type: 'string', default: '20' },
    'tokens-per-second': { type: 'string', default: '200' },
    rounds: { type: 'string', default: '2' },
    'redis-url': { type: 'string' },
  },
});
const lines = Number(args.lines);
const concurrency = Number(args.concurrency);
const tokens = Number(args.tokens);

const body = (i: number) => ({
  max_tokens: tokens,
  temperature: 0.8,
  messages: [{ role: 'user', content: `Describe picture ${i}.` }],
});

async function direct(url: string): Promise<number> {
  let next = 0;
  const start = performance.now();
  const lane = async () => {
    while (next < lines) {
      const i = next++;
      const res = await fetch(url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body(i)),
      });
      if (!res.ok) throw new Error(`direct line ${i}: HTTP ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return (performance.now() - start) / 1000;
}

async function viaBatch(url: string): Promise<number> {
  const jsonl =
    Array.from({ length: lines }, (_, i) =>
      JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions', body: body(i) }),
    ).join('\n') + '\n';
  const start = performance.now();
  const form = new FormData();
  form.append('purpose', 'batch');
  form.append('file', new Blob([jsonl]), 'in.jsonl');
  const file = (await (await fetch(url + '/v1/files', { method: 'POST', body: form })).json()) as { id: string };
  const created = await fetch(url + '/v1/batches', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
  });
  const batch = (await created.json()) as { id: string };
  if (!created.ok) throw new Error(`batch create: ${JSON.stringify(batch)}`);
  for (;;) {
    const b = (await (await fetch(url + '/v1/batches/' + batch.id)).json()) as {
      status: string;
      request_counts: { completed: number; failed: number };
    };
    if (b.status === 'completed') {
      if (b.request_counts.completed !== lines)
        throw new Error(
          `batch completed ${b.request_counts.completed} of ${lines} (${b.request_counts.failed} failed)`,
        );
      return (performance.now() - start) / 1000;
    }
    if (['failed', 'cancelled', 'expired'].includes(b.status)) throw new Error(`batch ended ${b.status}`);
    await sleep(25);
  }
}

const stateDir = mkdtempSync(join(tmpdir(), 'glimpse-bench-batch-'));
const config = loadConfig({
  flags: {
    engine: 'simulated',
    simulated: { ttftMs: Number(args['ttft-ms']), tokensPerSecond: Number(args['tokens-per-second']) },
    cache: { enabled: false },
    maxInFlight: concurrency,
    jobs: { workers: concurrency, interactiveReserve: 0, maxQueued: Math.max(10_000, lines) },
    stateDir,
    logLevel: 'warn',
    ...(args['redis-url'] ? { redisUrl: args['redis-url'] } : {}),
  },
  env: {},
});
const server = await createServer(config, { logger: createLogger({ level: 'warn', format: 'json' }) });
await server.engineStarted;
const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
const rows: Array<{ round: number; path: string; seconds: number; linesPerSecond: number }> = [];
try {
  for (let round = 1; round <= Number(args.rounds); round++) {
    for (const [path, run] of [
      ['direct', direct],
      ['batch', viaBatch],
    ] as const) {
      const seconds = await run(url);
      rows.push({ round, path, seconds, linesPerSecond: lines / seconds });
    }
  }
} finally {
  await server.close();
  rmSync(stateDir, { recursive: true, force: true });
}
const best = (path: string) => Math.max(...rows.filter((r) => r.path === path).map((r) => r.linesPerSecond));
const ratio = best('batch') / best('direct');
printTable(
  ['round', 'path', 'seconds', 'lines/s'],
  rows.map((r) => [String(r.round), r.path, r.seconds.toFixed(2), r.linesPerSecond.toFixed(1)]),
);
console.log(
  `\n${lines} lines, concurrency ${concurrency}, ${tokens} tokens each, store ${args['redis-url'] ? 'redis' : 'embedded'}: batch / direct = ${ratio.toFixed(3)} (best round each; target >= 0.9) ${ratio >= 0.9 ? 'MET' : 'NOT MET'}`,
);
mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
const out = fileURLToPath(new URL(`../results/batch-${Date.now()}.json`, import.meta.url));
writeFileSync(
  out,
  JSON.stringify(
    {
      when: new Date().toISOString(),
      config: {
        lines,
        concurrency,
        tokens,
        ttftMs: Number(args['ttft-ms']),
        tokensPerSecond: Number(args['tokens-per-second']),
        store: args['redis-url'] ? 'redis' : 'embedded',
      },
      rows,
      ratio,
      target: 0.9,
      met: ratio >= 0.9,
    },
    null,
    2,
  ),
);
console.log(`JSON: ${out}`);
