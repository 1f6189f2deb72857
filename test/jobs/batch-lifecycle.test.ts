/**
 * A batch's life past its lines, on both stores: the completion window ends (status expired, unrun
 * lines never run and go to the error file as batch_expired), a batch left in finalizing by a
 * crash is finalized again on restart without duplicate files, and files and ended batches are
 * dropped after their TTLs. Short windows and TTLs come from config; the tests wait for states.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { hasRedis } from '../helpers/redis.js';
import type { RunningGlimpse } from '../helpers/glimpse.js';
import { batchSuite } from '../helpers/batch-suite.js';

const line = (id: string, tokens: number) => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { max_tokens: tokens, messages: [{ role: 'user', content: `Describe picture ${id}.` }] },
});
const jsonl = (lines: object[]) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Line = { id: string; custom_id: string; response: { status_code: number } | null; error: { code: string } | null };

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(50);
  }
  throw new Error(`waited in vain for ${what}`);
}

for (const store of ['embedded', 'redis'] as const) {
  describe(
    `batch lifecycle (${store} store)`,
    { skip: store === 'redis' && !hasRedis ? 'redis-server not installed' : false },
    () => {
      const { suite, instance, client } = batchSuite(store);
      const ended = (c: OpenAI, id: string) =>
        until(`batch ${id} to end`, async () => {
          const b = await c.batches.retrieve(id);
          return ['completed', 'failed', 'cancelled', 'expired'].includes(b.status) ? b : undefined;
        });
      const lines = async (c: OpenAI, fileId: string) =>
        (await (await c.files.content(fileId)).text())
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Line);
      async function runBatch(c: OpenAI, input: object[], window = '24h') {
        const file = await c.files.create({
          file: await toFile(Buffer.from(jsonl(input)), 'in.jsonl'),
          purpose: 'batch',
        });
        return c.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: window as '24h',
        });
      }

      /** One job worker at 20 tokens a second: a line's length sets a lower bound on its time. */
      const slow = (batches: object) =>
        instance({ simulated: { ttftMs: 1, tokensPerSecond: 20 }, jobs: { workers: 1 }, batches });
      /** The job behind an output or error line (its id is the job's, renamed). */
      const jobOf = async (g: RunningGlimpse, l: Line) =>
        (await (await fetch(`${g.url}/v1/jobs/job_${l.id.slice('batch_req_'.length)}`)).json()) as {
          status: string;
          started_at: number | null;
        };

      test('a batch still running when its window ends expires: answered lines kept, unrun lines batch_expired and never run', async () => {
        // One job worker, 20 tokens/s: line a ends in a tenth of a second, b needs 50 s, so the 2 s window ends with b running and c, d waiting.
        const g = await slow({ maxCompletionWindowSeconds: 2, sweepSeconds: 1 });
        const c = client(g);
        await assert.rejects(runBatch(c, [line('a', 2)], '24h'), (e: unknown) => {
          assert.ok(e instanceof OpenAI.BadRequestError);
          assert.match(e.message, /maxCompletionWindowSeconds/);
          return true;
        });
        const batch = await runBatch(c, [line('a', 2), line('b', 1000), line('c', 2), line('d', 2)], '2s');
        assert.equal(batch.completion_window, '2s');
        assert.equal(batch.expires_at, batch.created_at + 2);
        const done = await ended(c, batch.id);
        assert.equal(done.status, 'expired');
        assert.ok(done.expired_at && done.expired_at >= batch.created_at);
        assert.equal(done.completed_at, null);
        assert.deepEqual(done.request_counts, { total: 4, completed: 1, failed: 3 });
        const out = await lines(c, done.output_file_id!);
        assert.deepEqual(
          out.map((l) => [l.custom_id, l.response?.status_code]),
          [['a', 200]],
        );
        const errs = await lines(c, done.error_file_id!);
        assert.deepEqual(errs.map((l) => l.custom_id).sort(), ['b', 'c', 'd']);
        for (const l of errs) {
          assert.equal(l.response, null);
          assert.equal(l.error?.code, 'batch_expired');
        }
        // The lines that were waiting never started.
        for (const l of errs.filter((e) => e.custom_id !== 'b')) {
          const job = await jobOf(g, l);
          assert.deepEqual([job.status, job.started_at], ['cancelled', null]);
        }
        if (store === 'redis') {
          // Every key of the ended batch expires with it, the lines' counts told after it ended included.
          const key = 'glimpse:batches:batch:' + batch.id;
          const admin = suite.admin();
          await until('every line to be counted', async () =>
            (await admin.hlen(key + ':counted')) === 4 ? true : undefined,
          );
          for (const k of [key, key + ':lines', key + ':counted']) assert.ok((await admin.pttl(k)) > 0, k);
        }
      });

      test('a worker picking up a line after the window ended expires the batch, with no sweep to do it', async () => {
        // No sweep within the test; one job worker at 20 tokens/s: line a takes at least 2 s, so the
        // 1 s window has ended when the worker picks up b.
        const g = await slow({ maxCompletionWindowSeconds: 1, sweepSeconds: 3600 });
        const c = client(g);
        const batch = await runBatch(c, [line('a', 40), line('b', 2)], '1s');
        const done = await ended(c, batch.id);
        assert.equal(done.status, 'expired');
        assert.deepEqual(done.request_counts, { total: 2, completed: 1, failed: 1 });
        assert.deepEqual(
          (await lines(c, done.output_file_id!)).map((l) => l.custom_id),
          ['a'],
        );
        const [b] = await lines(c, done.error_file_id!);
        assert.deepEqual([b!.custom_id, b!.error?.code], ['b', 'batch_expired']);
        const job = await jobOf(g, b!);
        assert.deepEqual([job.status, job.started_at], ['cancelled', null]);
      });

      test('a batch left in finalizing by a crash is finalized again on restart, its files not duplicated', async () => {
        const stateDir = mkdtempSync(join(tmpdir(), 'glimpse-state-'));
        try {
          const flags = { stateDir, batches: { finalizeGraceSeconds: 1 } };
          const first = await instance(flags);
          const batch = await runBatch(client(first), [line('a', 3), line('b', 2)]);
          const done = await ended(client(first), batch.id);
          assert.equal(done.status, 'completed');
          await first.close();
          // The crash: the output file was written, then the process died before the batch was marked.
          if (store === 'embedded') {
            const index = join(stateDir, 'files', 'index.jsonl');
            const rec = readFileSync(index, 'utf8')
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l) as { k: string; v?: Record<string, string> })
              .findLast((e) => e.k === 'batch:' + batch.id)!.v!;
            const {
              output_file_id: _o,
              completed_at: _c,
              final_completed: _f,
              final_failed: _g,
              drop_ms: _d,
              ...rest
            } = rec;
            appendFileSync(
              index,
              JSON.stringify({ k: 'batch:' + batch.id, v: { ...rest, status: 'finalizing' } }) + '\n',
            );
          } else {
            const key = 'glimpse:batches:batch:' + batch.id;
            const admin = suite.admin();
            await admin.hdel(key, 'output_file_id', 'completed_at', 'final_completed', 'final_failed', 'drop_ms');
            await admin.hset(key, 'status', 'finalizing', 'finalizing_ms', '0');
            await admin.persist(key);
            await admin.zadd('glimpse:batches:open', 0, batch.id);
          }
          const again = await instance(flags);
          const c = client(again);
          const redone = await ended(c, batch.id);
          assert.equal(redone.status, 'completed');
          assert.equal(redone.output_file_id, done.output_file_id, 'the same output file, written again');
          assert.deepEqual(redone.request_counts, { total: 2, completed: 2, failed: 0 });
          assert.deepEqual((await lines(c, redone.output_file_id!)).map((l) => l.custom_id).sort(), ['a', 'b']);
          const outputs = (await c.files.list()).data.filter((f) => f.filename === `${batch.id}_output.jsonl`);
          assert.equal(outputs.length, 1);
        } finally {
          rmSync(stateDir, { recursive: true, force: true });
        }
      });

      test('files and ended batches are dropped after their TTLs', async () => {
        const g = await instance({ batches: { fileTtlSeconds: 3, batchTtlSeconds: 1, sweepSeconds: 1 } });
        const c = client(g);
        const batch = await runBatch(c, [line('a', 2)]);
        const input = await c.files.retrieve(batch.input_file_id);
        assert.equal(input.expires_at, input.created_at + 3);
        const done = await ended(c, batch.id);
        assert.equal(done.status, 'completed');
        await until('the batch to be dropped', async () =>
          (await c.batches.retrieve(batch.id).then(
            () => false,
            (e: unknown) => e instanceof OpenAI.NotFoundError,
          ))
            ? true
            : undefined,
        );
        assert.deepEqual((await c.batches.list()).data, []);
        await until('the files to be dropped', async () => ((await c.files.list()).data.length ? undefined : true));
        await assert.rejects(c.files.content(done.output_file_id!), (e: unknown) => e instanceof OpenAI.NotFoundError);
        // Nothing of them is left behind in the store.
        if (store === 'embedded') {
          const dir = join(g.config.stateDir!, 'files');
          await until('the contents to be removed', async () =>
            readdirSync(dir).filter((f) => f.startsWith('file-')).length ? undefined : true,
          );
        } else assert.deepEqual(await suite.admin().keys('glimpse:batches:*'), []);
      });
    },
  );
}
