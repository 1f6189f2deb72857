/**
 * The three probes mean three things: /livez (the process answers: liveness), /health (the
 * engine's state), /ready (take traffic). With every GPU server down, glimpse is alive but
 * unhealthy and not ready, so an orchestrator stops sending it traffic instead of restarting it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGlimpse } from '../helpers/glimpse.js';
import { freePort } from '../../bench/util.js';

test('with every upstream down: /livez 200, /health 503 unhealthy with the reason, /ready 503', async () => {
  const dead = `http://127.0.0.1:${await freePort()}/v1`;
  const g = await startGlimpse({
    engine: 'upstream',
    upstream: [dead],
    upstreamModel: 'zai-org/GLM-4.6V-Flash',
    upstreamConnectTimeout: 1,
  });
  try {
    const live = await fetch(g.url + '/livez');
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { alive: true });
    const health = await fetch(g.url + '/health');
    assert.equal(health.status, 503);
    const body = (await health.json()) as { status: string; reason: string };
    assert.equal(body.status, 'unhealthy');
    assert.match(body.reason, /No upstream is answering/);
    assert.equal((await fetch(g.url + '/ready')).status, 503);
  } finally {
    await g.close();
  }
});

test('/livez stays 200 while draining, when /ready is 503 (a stopping pod is not killed early)', async () => {
  const g = await startGlimpse({ engine: 'simulated' });
  try {
    g.lifecycle.draining = true;
    assert.equal((await fetch(g.url + '/ready')).status, 503);
    assert.equal((await fetch(g.url + '/livez')).status, 200);
  } finally {
    g.lifecycle.draining = false;
    await g.close();
  }
});
