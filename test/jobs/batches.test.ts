/**
 * OpenAI's Files and Batch APIs through the official openai SDK, against both stores: embedded (no
 * Redis) and Redis, where two instances share one batch. Output and error files in OpenAI's line
 * format; cancel; ownership; bad input refused with stable codes and nothing kept.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';
import type { RunningGlimpse } from '../helpers/glimpse.js';
import { hasRedis } from '../helpers/redis.js';
import { batchSuite } from '../helpers/batch-suite.js';
import { pngBomb } from '../images/fixtures.js';

const line = (id: string, tokens: number, extra: Record<string, unknown> = {}) => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { max_tokens: tokens, messages: [{ role: 'user', content: `Describe picture ${id}.` }] },
  ...extra,
});
const jsonl = (lines: object[]) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
const bomb = `data:image/png;base64,${pngBomb(60000, 60000).toString('base64')}`;

for (const store of ['embedded', 'redis'] as const) {
  describe(
    `batches (${store} store)`,
    { skip: store === 'redis' && !hasRedis ? 'redis-server not installed' : false },
    () => {
      const { instance, client } = batchSuite(store);
      async function settled(c: OpenAI, id: string): Promise<OpenAI.Batches.Batch> {
        for (let i = 0; i < 400; i++) {
          const b = await c.batches.retrieve(id);
          if (['completed', 'failed', 'cancelled', 'expired'].includes(b.status)) return b;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`batch ${id} did not end`);
      }

      test('the SDK uploads a JSONL, creates a batch, and reads its output and error files in OpenAI line format', async () => {
        const g = await instance();
        const c = client(g);
        const lines = [
          line('a', 5),
          line('b', 3),
          {
            ...line('bad', 2),
            body: {
              messages: [
                {
                  role: 'user',
                  content: [
                    { type: 'image_url', image_url: { url: bomb } },
                    { type: 'text', text: 'what?' },
                  ],
                },
              ],
            },
          },
        ];
        const file = await c.files.create({
          file: await toFile(Buffer.from(jsonl(lines)), 'in.jsonl'),
          purpose: 'batch',
        });
        assert.match(file.id, /^file-/);
        assert.equal(file.purpose, 'batch');
        const batch = await c.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          metadata: { job: 'nightly' },
        });
        assert.equal(batch.status, 'in_progress');
        assert.deepEqual(batch.metadata, { job: 'nightly' });
        const done = await settled(c, batch.id);
        assert.equal(done.status, 'completed');
        assert.deepEqual(done.request_counts, { total: 3, completed: 2, failed: 1 });
        assert.ok(done.completed_at && done.finalizing_at);
        const out = (await (await c.files.content(done.output_file_id!)).text())
          .trim()
          .split('\n')
          .map(
            (l) =>
              JSON.parse(l) as {
                custom_id: string;
                response: { status_code: number; body: { object: string; usage: { completion_tokens: number } } };
                error: null;
              },
          );
        assert.deepEqual(out.map((o) => o.custom_id).sort(), ['a', 'b']);
        for (const o of out) {
          assert.equal(o.response.status_code, 200);
          assert.equal(o.response.body.object, 'chat.completion');
          assert.equal(o.error, null);
        }
        assert.equal(out.find((o) => o.custom_id === 'a')!.response.body.usage.completion_tokens, 5);
        const errs = (await (await c.files.content(done.error_file_id!)).text())
          .trim()
          .split('\n')
          .map(
            (l) =>
              JSON.parse(l) as {
                custom_id: string;
                response: { status_code: number; body: { error: { code: string } } };
              },
          );
        assert.equal(errs.length, 1);
        assert.equal(errs[0]!.custom_id, 'bad');
        assert.equal(errs[0]!.response.status_code, 422);
        assert.equal(errs[0]!.response.body.error.code, 'image_too_many_pixels');
        const listed = await c.batches.list({ limit: 10 });
        assert.deepEqual(
          listed.data.map((b) => b.id),
          [batch.id],
        );
        const files = (await c.files.list()).data.map((f) => f.id);
        assert.ok(
          files.includes(file.id) && files.includes(done.output_file_id!) && files.includes(done.error_file_id!),
        );
      });

      test('a batch for /v1/responses: each line answered as a response object; stateless lines only', async () => {
        const g = await instance();
        const c = client(g);
        const rline = (id: string, body: object) => ({ custom_id: id, method: 'POST', url: '/v1/responses', body });
        const file = await c.files.create({
          file: await toFile(
            Buffer.from(
              jsonl([
                rline('x', { input: 'Describe a cat.', max_output_tokens: 4 }),
                rline('y', { input: [{ role: 'user', content: 'And a dog?' }], max_output_tokens: 3 }),
              ]),
            ),
            'r.jsonl',
          ),
          purpose: 'batch',
        });
        const batch = await c.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/responses',
          completion_window: '24h',
        });
        const done = await settled(c, batch.id);
        assert.deepEqual(done.request_counts, { total: 2, completed: 2, failed: 0 });
        const out = (await (await c.files.content(done.output_file_id!)).text())
          .trim()
          .split('\n')
          .map(
            (l) =>
              JSON.parse(l) as {
                custom_id: string;
                response: {
                  body: { object: string; status: string; usage: { output_tokens: number }; output: unknown[] };
                };
              },
          );
        for (const o of out) {
          assert.equal(o.response.body.object, 'response');
          assert.ok(['completed', 'incomplete'].includes(o.response.body.status), o.response.body.status); // incomplete: cut at max_output_tokens
          assert.ok(o.response.body.output.length > 0);
        }
        assert.equal(out.find((o) => o.custom_id === 'x')!.response.body.usage.output_tokens, 4);
        const chained = await c.files.create({
          file: await toFile(
            Buffer.from(
              jsonl([rline('p', { input: 'hi' }), rline('q', { input: 'more', previous_response_id: 'resp_0123' })]),
            ),
            'r.jsonl',
          ),
          purpose: 'batch',
        });
        const err = await c.batches
          .create({ input_file_id: chained.id, endpoint: '/v1/responses', completion_window: '24h' })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.match(err.message, /Line 2 \(custom_id q\): previous_response_id is not taken in a batch/);
        const mixed = await c.files.create({
          file: await toFile(Buffer.from(jsonl([line('a', 2)])), 'c.jsonl'),
          purpose: 'batch',
        });
        await assert.rejects(
          c.batches.create({ input_file_id: mixed.id, endpoint: '/v1/responses', completion_window: '24h' }),
          /Line 1: url \/v1\/chat\/completions is not this batch's endpoint/,
        );
      });

      test('a batch cancelled while its lines run ends cancelled with what was answered', async () => {
        const g = await instance({ simulated: { ttftMs: 1, tokensPerSecond: 20 } });
        const c = client(g);
        const file = await c.files.create({
          file: await toFile(Buffer.from(jsonl([line('1', 100), line('2', 100), line('3', 100)])), 'in.jsonl'),
          purpose: 'batch',
        });
        const batch = await c.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        });
        const cancelling = await c.batches.cancel(batch.id);
        assert.equal(cancelling.status, 'cancelling');
        const done = await settled(c, batch.id);
        assert.equal(done.status, 'cancelled');
        assert.ok(done.cancelled_at);
        assert.equal(done.request_counts?.completed, 0);
      });

      test('bad input is refused whole with a stable code naming the line, and nothing is kept', async () => {
        const g = await instance({ batches: { maxLineBytes: 1024 }, jobs: { maxQueued: 2, workers: 0 } });
        const c = client(g);
        const upload = async (text: string) =>
          c.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' });
        const refused = async (p: Promise<unknown>, status: number, code: string, message?: RegExp) => {
          const err = await p.then(
            () => undefined,
            (e: unknown) => e,
          );
          assert.ok(err instanceof OpenAI.APIError, `expected ${code}`);
          assert.equal(err.status, status);
          assert.equal((err.error as { code: string }).code, code, err.message);
          if (message) assert.match(err.message, message);
        };
        await refused(upload('this is not JSON\n'), 400, 'invalid_file', /Line 1: not JSON/);
        await refused(
          upload(
            jsonl([
              line('a', 2),
              { ...line('b', 2), body: { messages: [{ role: 'user', content: 'x'.repeat(2000) }] } },
            ]),
          ),
          400,
          'invalid_file',
          /Line 2: .*maxLineBytes/,
        );
        await refused(
          upload(jsonl([line('a', 2), line('b', 2, { url: '/v1/embeddings' })])),
          400,
          'invalid_file',
          /Line 2: url must be/,
        );
        await refused(
          upload(jsonl([line('a', 2), line('a', 2)])),
          400,
          'invalid_file',
          /Line 2: custom_id 'a' appears twice/,
        );
        await refused(
          c.files.create({ file: await toFile(Buffer.from(jsonl([line('a', 2)])), 'in.jsonl'), purpose: 'fine-tune' }),
          400,
          'invalid_request',
        );
        assert.deepEqual((await c.files.list()).data, [], 'no refused upload was kept');
        const three = await upload(jsonl([line('a', 2), line('b', 2), line('c', 2)]));
        await refused(
          c.batches.create({ input_file_id: three.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
          400,
          'batch_too_large',
          /jobs\.maxQueued/,
        );
        const badBody = await upload(jsonl([line('a', 2), { ...line('b', 2), body: { messages: [] } }]));
        await refused(
          c.batches.create({ input_file_id: badBody.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
          400,
          'invalid_request',
          /Line 2 \(custom_id b\): .*messages/,
        );
        const two = await upload(jsonl([line('a', 2), line('b', 2)]));
        await c.batches.create({ input_file_id: two.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
        await refused(
          c.batches.create({ input_file_id: two.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
          429,
          'queue_full',
        );
        assert.equal((await c.batches.list()).data.length, 1, 'only the batch that fit was created');
      });

      test('batches and files belong to the API key that made them', async () => {
        const g = await instance({ apiKeys: 'alice:sk-alice-0001,bob:sk-bob-000002' });
        const alice = client(g, 'sk-alice-0001');
        const bob = client(g, 'sk-bob-000002');
        const file = await alice.files.create({
          file: await toFile(Buffer.from(jsonl([line('a', 2)])), 'in.jsonl'),
          purpose: 'batch',
        });
        const batch = await alice.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        });
        await assert.rejects(bob.batches.retrieve(batch.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
        await assert.rejects(bob.files.content(file.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
        await assert.rejects(
          bob.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
          (e: unknown) => e instanceof OpenAI.NotFoundError,
        );
        assert.deepEqual((await bob.batches.list()).data, []);
        assert.equal((await settled(alice, batch.id)).status, 'completed');
      });

      if (store === 'redis') {
        test('two instances share one batch: both run its lines, either answers for it', async () => {
          const a = await instance({ simulated: { ttftMs: 1, tokensPerSecond: 100 } });
          const b = await instance({ simulated: { ttftMs: 1, tokensPerSecond: 100 } });
          const lines = Array.from({ length: 8 }, (_, i) => line(String(i), 20));
          const file = await client(a).files.create({
            file: await toFile(Buffer.from(jsonl(lines)), 'in.jsonl'),
            purpose: 'batch',
          });
          const batch = await client(a).batches.create({
            input_file_id: file.id,
            endpoint: '/v1/chat/completions',
            completion_window: '24h',
          });
          const done = await settled(client(b), batch.id);
          assert.deepEqual(done.request_counts, { total: 8, completed: 8, failed: 0 });
          const ran = async (g: RunningGlimpse) =>
            Number(
              /^glimpse_jobs_ended_total\{outcome="succeeded"\} (\d+)$/m.exec(
                await (await fetch(g.url + '/metrics')).text(),
              )?.[1] ?? 0,
            );
          const [ra, rb] = [await ran(a), await ran(b)];
          assert.equal(ra + rb, 8);
          assert.ok(ra > 0 && rb > 0, `both instances ran lines (${ra} and ${rb})`);
          const out = (await (await client(b).files.content(done.output_file_id!)).text()).trim().split('\n');
          assert.equal(out.length, 8);
        });
      }
    },
  );
}
