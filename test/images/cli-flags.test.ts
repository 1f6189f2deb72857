import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nestFlags } from '../../src/cli/serve-flags.js';
import { loadConfig } from '../../src/config/index.js';

test('image, cache and quota flags land in their config groups, lists split on commas', () => {
  const flags = nestFlags({
    port: '0',
    imageMaxEdge: '448',
    imageDecodeTimeout: '3',
    imageAllowDomains: 'a.test,b.test',
    imageAllowPrivateNetworks: true,
    cacheMaxBytes: '1000',
    cache: true,
    quotaRequestsPerMinute: '5',
    quotaTokensPerMinute: '900',
    jobsWorkers: '0',
    redisUrl: 'redis://127.0.0.1:1/0',
  });
  const c = loadConfig({ flags, env: {} });
  assert.equal(c.images.maxEdge, 448);
  assert.equal(c.images.decodeTimeoutSeconds, 3);
  assert.deepEqual(c.images.allowDomains, ['a.test', 'b.test']);
  assert.equal(c.images.allowPrivateNetworks, true);
  assert.equal(c.cache.maxBytes, 1000);
  assert.deepEqual([c.quotas.requestsPerMinute, c.quotas.tokensPerMinute], [5, 900]);
  assert.equal(c.jobs.workers, 0);
  assert.equal(c.cache.enabled, true, "commander's default for --no-cache does not turn the cache off");
  assert.equal(c.redisUrl, 'redis://127.0.0.1:1/0');
  assert.equal(loadConfig({ flags: nestFlags({ cache: false }), env: {} }).cache.enabled, false);
});
