/**
 * The pool benchmark's simulated vLLM replica must speak vLLM's wire protocol, or the benchmark
 * measures a router against something no GPU server is: the openai SDK streams and reads answers
 * from it, its /metrics parses as Prometheus text (promtool) with vLLM's own gauge names, its queue
 * and batch show on those gauges, and a repeated image is a cache hit.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startReplica, type Replica } from '../../bench/pool/replica-sim.js';
import { RED_PIXEL_PNG } from '../helpers/glimpse.js';
import { waitFor } from '../helpers/wait.js';

const MODEL = 'zai-org/GLM-4.6V-Flash';
const base = (r: Replica) => r.url.replace(/\/v1$/, '');
const gauge = (text: string, name: string): number | undefined => {
  const m = new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

describe('bench/pool replica simulator', () => {
  let replica: Replica;
  let client: OpenAI;
  before(async () => {
    replica = await startReplica({ answerTokens: 5, stepBaseMs: 1 });
    client = new OpenAI({ baseURL: replica.url, apiKey: 'none', maxRetries: 0 });
  });
  after(() => replica.close());

  test('the openai SDK streams an answer with usage, and reads a non-streamed one', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.equal(finish, 'stop');
    assert.equal(usage?.completion_tokens, 5);
    assert.equal(text.split(' ').length - 1, 5);
    const whole = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 2,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(whole.choices[0]?.finish_reason, 'length');
    assert.equal(whole.usage?.completion_tokens, 2);
    assert.equal(whole.choices[0]?.message.content, ' A red');
  });

  test('a model it does not serve is 404 NotFoundError; /v1/models names the one it does', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'hi' }] }),
      (e: any) => e.status === 404 && /does not exist/.test(e.message),
    );
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [MODEL],
    );
  });

  test(
    '/metrics is Prometheus text that promtool parses, with vLLM names only drawing its colon lint',
    { skip: existsSync('/usr/bin/promtool') ? false : 'promtool not installed (Debian package prometheus)' },
    async () => {
      const res = await fetch(base(replica) + '/metrics');
      assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      const text = await res.text();
      const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      // Exit 1 is a parse failure; 3 is lint only, and vLLM's own exposition draws the same lint.
      assert.ok(r.status === 0 || r.status === 3, r.stderr + r.stdout);
      const lint = (r.stdout + r.stderr).split('\n').filter(Boolean);
      assert.ok(
        lint.every((l) => l.endsWith("metric names should not contain ':'")),
        lint.join('\n'),
      );
      for (const name of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc'])
        assert.match(text, new RegExp(`^${name}\\{engine="0",model_name="${MODEL}"\\} \\d+\\.\\d+$`, 'm'));
    },
  );
});

describe('bench/pool replica simulator: batching, queue and image cache', () => {
  test('past max_num_seqs requests wait in its own queue, as the gauges say; a client that leaves is dropped', async () => {
    // Slow steps so the requests are still in flight while the gauges are read.
    const replica = await startReplica({ maxNumSeqs: 2, answerTokens: 1000, stepBaseMs: 20 });
    try {
      const acs = Array.from({ length: 5 }, () => new AbortController());
      const pending = acs.map(
        (ac) =>
          fetch(replica.url + '/chat/completions', {
            method: 'POST',
            signal: ac.signal,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
          })
            .then((r) => r.text())
            .catch(() => undefined), // read until aborted below
      );
      // New requests join the batch at a step boundary, as in vLLM.
      await waitFor(() => replica.stats().running === 2 && replica.stats().waiting === 3, 'two running, three waiting');
      const text = await (await fetch(base(replica) + '/metrics')).text();
      assert.equal(gauge(text, 'vllm:num_requests_running'), 2);
      assert.equal(gauge(text, 'vllm:num_requests_waiting'), 3);
      assert.ok(gauge(text, 'vllm:kv_cache_usage_perc')! > 0);
      for (const ac of acs) ac.abort();
      await Promise.all(pending);
      await waitFor(() => replica.stats().running + replica.stats().waiting === 0, 'aborted requests dropped');
    } finally {
      await replica.close();
    }
  });

  test('an image seen before is a cache hit; the old gauge name is there for older vLLM', async () => {
    const replica = await startReplica({
      answerTokens: 1,
      stepBaseMs: 1,
      imagePrefillMs: 1,
      cachedImagePrefillMs: 0,
      kvGaugeName: 'gpu_cache_usage_perc',
    });
    try {
      const ask = () =>
        fetch(replica.url + '/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: MODEL,
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'text', text: 'what?' },
                  { type: 'image_url', image_url: { url: RED_PIXEL_PNG } },
                ],
              },
            ],
          }),
        }).then((r) => r.json());
      await ask();
      await ask();
      assert.deepEqual({ q: replica.stats().imageQueries, h: replica.stats().imageHits }, { q: 2, h: 1 });
      const text = await (await fetch(base(replica) + '/metrics')).text();
      assert.equal(gauge(text, 'vllm:mm_cache_hits_total'), 1);
      assert.notEqual(gauge(text, 'vllm:gpu_cache_usage_perc'), undefined);
    } finally {
      await replica.close();
    }
  });
});
