/** `glimpse serve --engine embedded --model-path fixtures/tiny-vlm`, the command itself, end to end. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { solidPng } from '../../src/engines/embedded/index.js';

const CLI = join(import.meta.dirname, '../../src/cli/main.ts');
const ROOT = join(import.meta.dirname, '../..');

test('glimpse serve --engine embedded --model-path fixtures/tiny-vlm becomes ready and answers about an image', async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, 'serve', '--engine', 'embedded', '--model-path', 'fixtures/tiny-vlm', '--port', '0'],
    {
      cwd: ROOT,
      env: { ...process.env, GLIMPSE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let logs = '';
  child.stdout.on('data', (d) => (logs += d));
  child.stderr.on('data', (d) => (logs += d));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('serve did not start: ' + logs)), 60_000);
      child.stdout.on('data', () => {
        const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(logs);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', () => reject(new Error('serve exited: ' + logs)));
    });
    const deadline = Date.now() + 60_000;
    while ((await fetch(`${url}/ready`)).status !== 200) {
      assert.ok(Date.now() < deadline, 'ready within a minute: ' + logs.slice(-2000));
      await new Promise((r) => setTimeout(r, 100));
    }
    const image = `data:image/png;base64,${solidPng(64, 48, [250, 200, 0]).toString('base64')}`;
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
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
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { usage: { completion_tokens: number }; model: string };
    assert.equal(body.usage.completion_tokens, 5);
    assert.equal(body.model, 'tiny-vlm');
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});
