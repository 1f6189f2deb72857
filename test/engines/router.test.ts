/**
 * Several models behind one glimpse (--upstream-routes): each request goes to the pool that serves
 * the model it names, /v1/models lists them all, and one pool being down costs only its own model.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { loadConfig } from '../../src/config/index.js';
import { createServer } from '../../src/server/index.js';

describe('upstream routes: two models, two pools', () => {
  let flash: FakeVllm;
  let big: FakeVllm;
  let g: RunningGlimpse;
  let client: OpenAI;
  before(async () => {
    flash = await startFakeVllm({ script: () => ({ reasoning: [], content: ['from', ' flash'] }) });
    big = await startFakeVllm({ model: 'glm-4.6v', script: () => ({ reasoning: [], content: ['from', ' big'] }) });
    // As the flag and env value take it: name=url|url.
    g = await startGlimpse({
      engine: 'upstream',
      upstream: [flash.url],
      upstreamModel: flash.model,
      modelName: 'glm-4.6v-flash',
      upstreamRoutes: `glm-4.6v=${big.url}|${big.url}`,
      upstreamHealthInterval: 0.2,
      upstreamConnectTimeout: 1,
    });
    client = new OpenAI({ baseURL: g.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await g?.close();
    await flash?.close();
    await big?.close();
  });
  const ask = (model: string) =>
    client.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'Which are you?' }], max_tokens: 4 })
      .then((r) => r.choices[0]!.message.content);

  test('each model is answered by its own pool, under the name its servers know it by; /v1/models lists both', async () => {
    assert.deepEqual((await client.models.list()).data.map((m) => m.id).sort(), ['glm-4.6v', 'glm-4.6v-flash']);
    assert.equal(await ask('glm-4.6v-flash'), 'from flash');
    assert.equal(await ask('glm-4.6v'), 'from big');
    assert.equal(flash.lastChatBody().model, flash.model);
    assert.equal(big.lastChatBody().model, 'glm-4.6v');
    await assert.rejects(ask('gpt-4o'), (err: InstanceType<typeof OpenAI.APIError>) => err.status === 404);
  });

  test('a pool that is down costs only its model: the other still answers, /ready stays 200 and /health names what is down', async () => {
    await big.close();
    await assert.rejects(ask('glm-4.6v'), (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.code, 'upstream_unavailable');
      return true;
    });
    assert.equal(await ask('glm-4.6v-flash'), 'from flash');
    assert.equal((await fetch(g.url + '/ready')).status, 200);
    // The active health checks (every 0.2 s here) eject the dead pool's servers.
    let health: { status: string; reason?: string; upstreams: Array<{ pool: string }> };
    const end = Date.now() + 10_000;
    for (;;) {
      health = (await (await fetch(g.url + '/health')).json()) as typeof health;
      if (health.reason || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(health.status, 'healthy');
    assert.match(health.reason ?? '', /glm-4\.6v:/);
    assert.deepEqual(health.upstreams.map((p) => p.pool).sort(), ['glm-4.6v-flash: primary', 'glm-4.6v: primary']);
  });
});

test('routes need the upstream engine, and a model may be served only once', async () => {
  for (const [flags, why] of [
    [{ engine: 'simulated', upstreamRoutes: { other: 'http://127.0.0.1:9/v1' } }, /--engine is 'simulated'/],
    [
      {
        engine: 'upstream',
        upstream: ['http://127.0.0.1:9/v1'],
        modelName: 'same',
        upstreamRoutes: { same: 'http://127.0.0.1:9/v1' },
      },
      /served twice/,
    ],
    [{ engine: 'upstream', upstream: ['http://127.0.0.1:9/v1'], upstreamRoutes: { other: '|' } }, /names no base URL/],
  ] as const) {
    const config = loadConfig({ flags: { ...flags, port: 0, logLevel: 'silent' }, env: {} });
    await assert.rejects(createServer(config), why);
  }
});
