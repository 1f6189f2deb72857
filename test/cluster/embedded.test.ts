/**
 * `glimpse serve --workers 2` on the embedded engine with the random-weight fixture: the model is
 * loaded by one process only (the primary: onnxruntime is mapped there and in no worker), and
 * both workers answer about an image through it, with the same greedy answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { solidPng } from '../../src/engines/embedded/index.js';
import { startCluster } from '../helpers/cluster.js';

/** Whether the process has the onnxruntime native library mapped: only a process that loaded a model has. */
const hasModelRuntime = (pid: number) => /onnxruntime/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));

test(
  '--workers 2 with the embedded engine: one process owns the model, both workers answer through it',
  { skip: process.platform !== 'linux' && 'reads /proc' },
  async () => {
    const cluster = await startCluster(['--engine', 'embedded', '--model-path', 'fixtures/tiny-vlm', '--workers', '2']);
    try {
      const pids = cluster.pids();
      assert.equal(pids.size, 2);
      assert.ok(hasModelRuntime(cluster.child.pid!), 'the primary loaded the model');
      for (const [worker, pid] of pids)
        assert.ok(!hasModelRuntime(pid), `worker ${worker} (pid ${pid}) loaded no model`);

      const health = JSON.parse((await cluster.ask('/health')).body) as {
        engine: string;
        model: string;
        status: string;
      };
      assert.deepEqual(
        [health.engine, health.model, health.status],
        ['embedded', 'tiny-vlm', 'healthy'],
        'a worker reports the model the primary owns',
      );

      const image = `data:image/png;base64,${solidPng(64, 48, [250, 200, 0]).toString('base64')}`;
      const body = JSON.stringify({
        model: 'tiny-vlm',
        max_tokens: 5,
        temperature: 0,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: image } },
              { type: 'text', text: 'What is it?' },
            ],
          },
        ],
      });
      const answers = new Map<string, string>();
      for (let i = 0; answers.size < 2; i++) {
        assert.ok(i < 50, 'both workers answer');
        const a = await cluster.ask('/v1/chat/completions', { method: 'POST', body });
        assert.equal(a.status, 200, a.body);
        const parsed = JSON.parse(a.body) as {
          usage: { completion_tokens: number };
          choices: Array<{ message: { content: string } }>;
        };
        assert.equal(parsed.usage.completion_tokens, 5);
        answers.set(a.worker, parsed.choices[0].message.content);
      }
      assert.equal(answers.get('1'), answers.get('2'), 'the same model answers for both workers');
      for (const pid of pids.values()) assert.ok(!hasModelRuntime(pid), 'answering loaded no model in a worker either');

      // More at once than the model has threads, spread over both workers: each worker's scheduler
      // admits against what the primary says is free (the engine itself keeps no queue), so every
      // one is answered, none refused by an engine past its capacity.
      const burst = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          cluster.ask('/v1/chat/completions', {
            method: 'POST',
            body: JSON.stringify({
              model: 'tiny-vlm',
              max_tokens: 4,
              temperature: 0,
              messages: [{ role: 'user', content: `Say ${i}.` }],
            }),
          }),
        ),
      );
      assert.deepEqual(
        burst.map((a) => a.status),
        Array(8).fill(200),
        burst.map((a) => a.body).join('\n'),
      );
      assert.equal(new Set(burst.map((a) => a.worker)).size, 2, 'both workers took part');
    } finally {
      await cluster.stop();
    }
  },
);
