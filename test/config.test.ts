import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../src/config/index.js';

test('flags beat env, env beats defaults, lists split on commas', () => {
  const c = loadConfig({
    flags: { port: '9001', upstream: 'http://a/v1, http://b/v1' },
    env: { GLIMPSE_PORT: '9000', GLIMPSE_MAX_IN_FLIGHT: '7' },
  });
  assert.equal(c.port, 9001);
  assert.equal(c.maxInFlight, 7);
  assert.deepEqual(c.upstream, ['http://a/v1', 'http://b/v1']);
  assert.equal(c.host, '127.0.0.1');
});

test('maxBatchSize is read as maxInFlight (flag, env or file), the new name winning; unset means the engines decide', () => {
  assert.equal(loadConfig({ env: { GLIMPSE_MAX_BATCH_SIZE: '9' } }).maxInFlight, 9);
  assert.equal(loadConfig({ flags: { maxBatchSize: '3' }, env: {} }).maxInFlight, 3);
  const both = loadConfig({ flags: { maxBatchSize: '3', maxInFlight: '5' }, env: {} });
  assert.equal(both.maxInFlight, 5);
  assert.equal('maxBatchSize' in both, false);
  assert.equal(loadConfig({ env: {} }).maxInFlight, undefined);
});

test('an invalid value is refused with a message naming the setting, its flag and its env variable', () => {
  assert.throws(
    () => loadConfig({ flags: { port: '70000' }, env: {} }),
    (err: unknown) =>
      err instanceof ConfigError &&
      /port/.test(err.message) &&
      /--port/.test(err.message) &&
      /GLIMPSE_PORT/.test(err.message),
  );
});

test('an unknown setting is refused', () => {
  assert.throws(() => loadConfig({ flags: { prot: 1 }, env: {} }), /Unknown setting: prot/);
});

test('model profiles: images.maxEdgeByModel takes id=px pairs from env and flags, and a bad pair is named', () => {
  const c = loadConfig({
    env: { GLIMPSE_IMAGES_MAX_EDGE_BY_MODEL: 'Qwen/Qwen2-VL-2B-Instruct=448, glm-4.6v-flash=1280' },
  });
  assert.deepEqual(c.images.maxEdgeByModel, { 'Qwen/Qwen2-VL-2B-Instruct': 448, 'glm-4.6v-flash': 1280 });
  assert.deepEqual(loadConfig({ env: {} }).images.maxEdgeByModel, {});
  assert.throws(
    () => loadConfig({ env: { GLIMPSE_IMAGES_MAX_EDGE_BY_MODEL: 'small=8,oops' } }),
    (err: unknown) =>
      err instanceof ConfigError &&
      /images\.maxEdgeByModel\.small: must be >= 16/.test(err.message) &&
      /images\.maxEdgeByModel\.oops: must be integer/.test(err.message) &&
      /GLIMPSE_IMAGES_MAX_EDGE_BY_MODEL/.test(err.message),
  );
});
