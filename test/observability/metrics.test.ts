import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { sample } from '../helpers/metrics.js';

describe('Prometheus metrics', () => {
  let g: RunningGlimpse;
  before(async () => {
    g = await startGlimpse({ engine: 'simulated', simulated: { ttftMs: 5, tokensPerSecond: 1000, answerTokens: 4 } });
  });
  after(() => g.close());

  const chat = (body: object) =>
    fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], ...body }),
    });

  test('counts requests, generations, tokens and time to first token, and gauges go back to zero', async () => {
    await (await chat({ max_tokens: 3 })).json();
    await (await chat({ stream: true })).text();
    await (await chat({ max_tokens: -1 })).json();
    const res = await fetch(g.url + '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain/);
    const text = await res.text();
    assert.equal(
      sample(text, 'glimpse_http_requests_total', { route: '/v1/chat/completions', status: '200' }),
      2,
      'the SSE request counts too',
    );
    assert.equal(sample(text, 'glimpse_http_requests_total', { route: '/v1/chat/completions', status: '400' }), 1);
    assert.equal(sample(text, 'glimpse_generations_total', { model: 'glimpse-simulated', outcome: 'length' }), 1);
    assert.equal(sample(text, 'glimpse_generations_total', { model: 'glimpse-simulated', outcome: 'stop' }), 1);
    assert.equal(sample(text, 'glimpse_generated_tokens_total', { model: 'glimpse-simulated' }), 7);
    assert.equal(sample(text, 'glimpse_time_to_first_token_seconds_count', { model: 'glimpse-simulated' }), 2);
    assert.ok(
      sample(text, 'glimpse_time_to_first_token_seconds_sum', { model: 'glimpse-simulated' })! >= 0.005 * 2 * 0.9,
    );
    assert.equal(sample(text, 'glimpse_admitted_total'), 2);
    assert.equal(sample(text, 'glimpse_generations_in_flight'), 0);
    assert.equal(sample(text, 'glimpse_queue_depth'), 0);
    assert.equal(sample(text, 'glimpse_engine_ready', { engine: 'simulated' }), 1);
    assert.ok(sample(text, 'glimpse_process_resident_memory_bytes')! > 0);
  });

  test('counts resolved and refused images by code, with the time spent normalizing', async () => {
    const { png } = await import('../images/fixtures.js');
    const before = await (await fetch(g.url + '/metrics')).text();
    const image = (url: string) =>
      chat({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url } },
              { type: 'text', text: 'what is this?' },
            ],
          },
        ],
      });
    const ok = await image(`data:image/png;base64,${(await png(300, 200)).toString('base64')}`);
    assert.equal(ok.status, 200, await ok.text());
    const bad = await image(`data:image/png;base64,${Buffer.from('not an image at all').toString('base64')}`);
    assert.equal(bad.status, 422, await bad.text());
    const text = await (await fetch(g.url + '/metrics')).text();
    const delta = (name: string, labels?: Record<string, string>) =>
      (sample(text, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    assert.equal(delta('glimpse_images_resolved_total'), 1);
    assert.equal(delta('glimpse_images_refused_total', { code: 'invalid_image' }), 1);
    assert.ok(delta('glimpse_image_normalize_seconds_total') > 0);
    assert.equal(sample(text, 'glimpse_image_decodes_running'), 0);
    assert.equal(sample(text, 'glimpse_image_decodes_waiting'), 0);
  });

  test(
    'the exposition passes promtool check metrics',
    { skip: existsSync('/usr/bin/promtool') ? false : 'promtool not installed (Debian package prometheus)' },
    async () => {
      const text = await (await fetch(g.url + '/metrics')).text();
      const file = join(mkdtempSync(join(tmpdir(), 'glimpse-metrics-')), 'metrics.txt');
      writeFileSync(file, text);
      const r = spawnSync('sh', ['-c', `promtool check metrics < ${file}`], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    },
  );
});
