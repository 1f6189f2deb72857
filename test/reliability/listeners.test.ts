/**
 * Many requests at once must not look like a leak: each stream used to add an abort listener to
 * one shared shutdown signal, so past 10 concurrent requests Node printed
 * MaxListenersExceededWarning, which operators read as a leak. 50 streams in flight together here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { waitFor } from '../helpers/wait.js';

describe('50 concurrent requests', () => {
  let vllm: FakeVllm;
  let glimpse: RunningGlimpse;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  before(async () => {
    // Every answer waits on the gate after its first chunk, so all 50 are in flight together.
    vllm = await startFakeVllm({
      script: () => ({ reasoning: [], content: ['A', ' red', ' square'], delayMs: 1, gate }),
    });
    glimpse = await startGlimpse({
      engine: 'upstream',
      upstream: [vllm.url],
      upstreamModel: vllm.model,
      modelName: 'glm-4.6v-flash',
      upstreamHealthInterval: 0,
      maxInFlight: 64,
      maxQueue: 64,
    });
  });
  after(async () => {
    release();
    await glimpse?.close();
    await vllm?.close();
  });

  test('print no MaxListenersExceededWarning, and every stream ends with [DONE]', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const body = JSON.stringify({
        model: 'glm-4.6v-flash',
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      });
      const streams = Array.from({ length: 50 }, async () => {
        const res = await fetch(glimpse.url + '/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        assert.equal(res.status, 200);
        return await res.text();
      });
      // 50 upstream requests held open at once: 50 streams running in glimpse together.
      await waitFor(() => vllm.openConnections() === 50, '50 upstream requests in flight');
      release();
      const texts = await Promise.all(streams);
      for (const t of texts) assert.match(t, /data: \[DONE\]\n\n$/);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      assert.deepEqual(
        warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
        [],
      );
    } finally {
      process.off('warning', onWarning);
    }
  });
});
