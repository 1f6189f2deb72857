/** Engine configurations beyond the default single worker. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedEngine, cudaProviderInstalled } from '../../src/engines/embedded/index.js';
import { askAbout, collect, fixtureConfig, quietLogger, request } from './helpers.js';

test('with two workers, a second request starts while the first is still generating', async () => {
  const engine = createEmbeddedEngine(fixtureConfig({ embeddedWorkers: 2, warmup: false }), quietLogger);
  await engine.start();
  try {
    assert.equal(engine.health().status, 'healthy');
    const order: string[] = [];
    const run = async (name: string, maxTokens: number) => {
      let first = true;
      for await (const ev of engine.generate(
        request(askAbout([5, 50, 200]), { maxTokens }),
        new AbortController().signal,
      )) {
        if (ev.type === 'token' && first) {
          first = false;
          order.push(`${name}:first`);
        }
        if (ev.type === 'done') order.push(`${name}:done`);
      }
    };
    await Promise.all([run('long', 400), run('short', 3)]);
    assert.ok(order.indexOf('short:done') < order.indexOf('long:done'), order.join(' '));
    // Two at once on two workers: each gets the answer it gets alone (no state shared between them).
    const alone = await collect(
      engine.generate(request(askAbout([20, 40, 220]), { maxTokens: 6 }), new AbortController().signal),
    );
    const [a, b] = await Promise.all([
      collect(engine.generate(request(askAbout([200, 30, 30]), { maxTokens: 6 }), new AbortController().signal)),
      collect(engine.generate(request(askAbout([20, 40, 220]), { maxTokens: 6 }), new AbortController().signal)),
    ]);
    assert.deepEqual(a.terminal, { type: 'done', finishReason: 'length' });
    assert.equal(b.text, alone.text);
    assert.notEqual(a.text, b.text);
  } finally {
    await engine.close();
  }
});

test(
  '--device cuda without the CUDA build of onnxruntime leaves the engine unhealthy with the install command',
  { skip: cudaProviderInstalled() && 'CUDA provider installed here' },
  async () => {
    const engine = createEmbeddedEngine(fixtureConfig({ device: 'cuda' }), quietLogger);
    await engine.start();
    const h = engine.health();
    assert.equal(h.status, 'unhealthy');
    assert.match(h.reason!, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
    const got = await collect(engine.generate(request(askAbout([1, 1, 1])), new AbortController().signal));
    assert.equal(got.terminal.type === 'error' && got.terminal.error.code, 'engine_unavailable');
    await engine.close();
  },
);
