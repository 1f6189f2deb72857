/**
 * For a describe block of batch tests run against one store: glimpse instances on the simulated
 * engine (with a redis-server for the block when the store is Redis), closed after each test,
 * and an openai SDK client for one.
 */
import { after, afterEach, before, beforeEach } from 'node:test';
import OpenAI from 'openai';
import { startGlimpse, type RunningGlimpse } from './glimpse.js';
import { redisPerSuite } from './redis.js';

export function batchSuite(store: 'embedded' | 'redis') {
  const noop = () => {};
  const suite = redisPerSuite<RunningGlimpse>({
    before: store === 'redis' ? before : noop,
    after: store === 'redis' ? after : noop,
    beforeEach: store === 'redis' ? beforeEach : noop,
    afterEach,
  });
  async function instance(extra: Record<string, unknown> = {}): Promise<RunningGlimpse> {
    const g = await startGlimpse({
      engine: 'simulated',
      simulated: { ttftMs: 1, tokensPerSecond: 200 },
      cache: { enabled: false },
      ...(store === 'redis' ? { redisUrl: suite.redis().url } : {}),
      ...extra,
    });
    suite.servers.push(g);
    return g;
  }
  const client = (g: RunningGlimpse, apiKey = 'unused') =>
    new OpenAI({ baseURL: g.url + '/v1', apiKey, maxRetries: 0 });
  return { suite, instance, client };
}
