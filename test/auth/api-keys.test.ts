import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseApiKeys, findKey } from '../../src/auth/index.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { sample } from '../helpers/metrics.js';

describe('API keys', () => {
  let g: RunningGlimpse;
  before(async () => {
    g = await startGlimpse({
      engine: 'simulated',
      apiKeys: 'alice:sk-alice-0001,sk-anonymous-0002',
      simulated: { ttftMs: 1, tokensPerSecond: 2000 },
    });
  });
  after(async () => {
    await g.close();
  });

  const chat = (headers: Record<string, string>) =>
    fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    });

  test('a model route without a key is 401 unauthorized with a Bearer challenge', async () => {
    const res = await chat({});
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    const body = await res.json();
    assert.equal(body.error.code, 'unauthorized');
    assert.equal(body.error.type, 'authentication_error');
  });

  test('a wrong key is 401 and says the key is not valid', async () => {
    const res = await chat({ authorization: 'Bearer sk-wrong-9999' });
    assert.equal(res.status, 401);
    assert.match((await res.json()).error.message, /not valid/);
  });

  test('a right key as Bearer or X-API-Key is served', async () => {
    assert.equal((await chat({ authorization: 'Bearer sk-alice-0001' })).status, 200);
    assert.equal((await chat({ 'x-api-key': 'sk-anonymous-0002' })).status, 200);
  });

  test('the OpenAI SDK authenticates with its apiKey', async () => {
    const ok = new OpenAI({ baseURL: g.url + '/v1', apiKey: 'sk-alice-0001', maxRetries: 0 });
    const res = await ok.chat.completions.create({
      model: 'glimpse-simulated',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
    assert.equal(res.usage?.completion_tokens, 2);
    const bad = new OpenAI({ baseURL: g.url + '/v1', apiKey: 'nope-nope', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (err: unknown) => err instanceof OpenAI.AuthenticationError);
  });

  test('/infer refuses in its own shape', async () => {
    const form = new FormData();
    form.append('prompt', 'x');
    const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.equal(body.error_code, 'unauthorized');
    assert.notEqual(body.code, 0);
  });

  test('health, readiness and docs stay open for probes and people', async () => {
    for (const path of ['/health', '/ready', '/docs/json']) assert.equal((await fetch(g.url + path)).status, 200, path);
  });

  test('a WebSocket without a key is refused at the upgrade; with ?api_key= it connects', async () => {
    const wsUrl = g.url.replace('http', 'ws') + '/ws/infer';
    const refused = new WebSocket(wsUrl);
    const [err] = await once(refused, 'error');
    assert.match(String((err as Error).message), /401/);
    const ok = new WebSocket(wsUrl + '?api_key=sk-alice-0001');
    await once(ok, 'open');
    ok.close();
    await once(ok, 'close');
  });
});

describe('API key parsing', () => {
  test('entries are name:secret or a bare secret named by its digest; lookups find the right one', () => {
    const keys = parseApiKeys(['team-a:secret-aaaa', 'secret-bbbb']);
    assert.equal(keys[0]!.name, 'team-a');
    assert.match(keys[1]!.name, /^key-[0-9a-f]{8}$/);
    assert.equal(findKey(keys, 'secret-aaaa')?.name, 'team-a');
    assert.equal(findKey(keys, 'secret-bbbb')?.name, keys[1]!.name);
    assert.equal(findKey(keys, 'secret-cccc'), undefined);
  });

  test('a key shorter than 8 characters is refused', () => {
    assert.throws(() => parseApiKeys(['x:short']), /shorter than 8/);
  });
});

describe('API keys from a file are rotated without a restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-keys-'));
  // Laid out as Kubernetes mounts a Secret: keys -> ..data/keys, ..data -> a timestamped folder
  // that the kubelet replaces in one rename. Plain files rewritten in place work the same way.
  const publish = (version: string, text: string | undefined) => {
    mkdirSync(join(dir, version));
    if (text !== undefined) writeFileSync(join(dir, version, 'keys'), text);
    symlinkSync(version, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  publish('v1', 'alice:sk-alice-old-0001\nbob:sk-bob-0002\n');
  symlinkSync('..data/keys', join(dir, 'keys'));
  let g: RunningGlimpse;
  const status = (key: string) =>
    fetch(g.url + '/v1/models', { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    sample(await fetch(g.url + '/metrics').then((r) => r.text()), name, labels);
  before(async () => {
    g = await startGlimpse({ engine: 'simulated', apiKeysFile: join(dir, 'keys'), apiKeysReloadSeconds: 0.05 });
  });
  after(async () => g?.close());

  test('a rotated Secret applies within the reload interval: the new key is served, the removed one refused', async () => {
    assert.equal(await status('sk-alice-old-0001'), 200);
    assert.equal(await status('sk-alice-new-0003'), 401);
    assert.equal(await metric('glimpse_api_keys'), 2);
    publish('v2', '# rotated\nalice:sk-alice-new-0003\nbob:sk-bob-0002\n');
    const deadline = Date.now() + 5000;
    while ((await status('sk-alice-new-0003')) !== 200) {
      assert.ok(Date.now() < deadline, 'the new key was not picked up');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await status('sk-alice-old-0001'), 401);
    assert.equal(await status('sk-bob-0002'), 200);
    assert.equal(await metric('glimpse_api_keys_reloads_total', { outcome: 'reloaded' }), 1);
  });

  test('an empty, invalid or missing file leaves the keys in force, and counts an error', async () => {
    const errors = (await metric('glimpse_api_keys_reloads_total', { outcome: 'error' })) ?? 0;
    let seen = errors;
    for (const [version, text] of [
      ['v3', ''],
      ['v4', undefined],
      ['v5', 'alice:short\n'],
    ] as const) {
      publish(version, text);
      const deadline = Date.now() + 5000;
      while (((await metric('glimpse_api_keys_reloads_total', { outcome: 'error' })) ?? 0) <= seen) {
        assert.ok(Date.now() < deadline, `no error counted for ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      seen = (await metric('glimpse_api_keys_reloads_total', { outcome: 'error' }))!;
      assert.equal(await status('sk-alice-new-0003'), 200, 'the keys in force still work');
      assert.equal(await status('sk-wrong-key-0000'), 401, 'and the server did not open up');
    }
    assert.equal(await metric('glimpse_api_keys'), 2);
    // The timer reports a refused file once, not on every tick; SIGHUP (reloadApiKeys) says it again.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await metric('glimpse_api_keys_reloads_total', { outcome: 'error' }), seen);
    const r = g.reloadApiKeys();
    assert.equal(r.outcome, 'error');
    assert.match((r as { error: string }).error, /shorter than 8/);
  });
});

test("a keys file emptied while static keys are also set is refused: the file's keys are not revoked by accident", async () => {
  const { ApiKeyRing } = await import('../../src/auth/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-keys-static-'));
  const file = join(dir, 'keys');
  writeFileSync(file, 'filed:sk-filed-key-0001\n');
  const ring = new ApiKeyRing(['static:sk-static-key-0002'], file);
  assert.equal(ring.size, 2);
  writeFileSync(file, '');
  const r = ring.reload();
  assert.equal(r.outcome, 'error');
  assert.match((r as { error: string }).error, /holds no key/);
  assert.equal(ring.find('sk-filed-key-0001')?.name, 'filed');
  // The timer takes new content only when two reads agree (a file rewritten in place is not read half-written).
  writeFileSync(file, 'filed:sk-filed-key-0003\n');
  assert.equal(ring.reload(true).outcome, 'unchanged');
  assert.equal(ring.reload(true).outcome, 'reloaded');
  assert.equal(ring.find('sk-filed-key-0003')?.name, 'filed');
  assert.equal(ring.find('sk-static-key-0002')?.name, 'static');
});
