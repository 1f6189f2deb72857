/**
 * `glimpse batch`, run as a child process against a real glimpse (simulated engine): OpenAI batch
 * lines and "IMAGE PROMPT" lines answered into OpenAI's output format; a second run skips what was
 * answered; Ctrl-C leaves only whole lines and the next run finishes the rest, each request once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RED_PIXEL_PNG, startGlimpse } from '../helpers/glimpse.js';

const entry = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function run(
  args: string[],
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'batch', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    onStderr?.(stderr, child);
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
}

const outputLines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; body: { object: string } } });

test('glimpse batch answers OpenAI batch lines and IMAGE PROMPT lines, and a second run skips what was answered', async () => {
  const g = await startGlimpse({
    engine: 'simulated',
    simulated: { ttftMs: 1, tokensPerSecond: 500 },
    cache: { enabled: false },
  });
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-batch-cli-'));
  try {
    const png = join(dir, 'red.png');
    writeFileSync(png, Buffer.from(RED_PIXEL_PNG.split(',')[1]!, 'base64'));
    const input = join(dir, 'in.jsonl');
    const chat = (id: string) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] },
      });
    writeFileSync(input, [chat('a'), chat('b'), `${png} What colour is this?`, ''].join('\n'));
    const first = await run([input, '--server', g.url, '--concurrency', '2']);
    assert.equal(first.code, 0, first.stderr);
    const out = join(dir, 'in.out.jsonl');
    const lines = outputLines(out);
    assert.deepEqual(lines.map((l) => l.custom_id).sort(), ['a', 'b', 'line-3']);
    for (const l of lines) assert.equal(l.response.body.object, 'chat.completion');
    assert.match(first.stderr, /lines\/s/);
    const second = await run([input, '--server', g.url]);
    assert.equal(second.code, 0);
    assert.match(second.stderr, /3 already answered .* 0 to run/);
    assert.equal(outputLines(out).length, 3, 'nothing answered twice');
  } finally {
    await g.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Ctrl-C stops cleanly: whole lines only, exit 130, and the next run answers each remaining request once', async () => {
  const g = await startGlimpse({
    engine: 'simulated',
    simulated: { ttftMs: 1, tokensPerSecond: 40 },
    cache: { enabled: false },
  });
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-batch-cli-'));
  try {
    const input = join(dir, 'in.jsonl');
    const ids = Array.from({ length: 6 }, (_, i) => `r${i}`);
    writeFileSync(
      input,
      ids
        .map((id) =>
          JSON.stringify({
            custom_id: id,
            method: 'POST',
            url: '/v1/chat/completions',
            body: { max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
          }),
        )
        .join('\n'),
    );
    const out = join(dir, 'answers.jsonl');
    let sent = false;
    // Interrupted once the first answer is written (its progress line shows 1/6).
    const stopped = await run([input, '--server', g.url, '--output', out, '--concurrency', '1'], (text, child) => {
      if (!sent && / 1\/6 /.test(text)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    assert.equal(stopped.code, 130, stopped.stderr);
    assert.match(stopped.stderr, /Run the same command again/);
    assert.ok(existsSync(out));
    const partial = outputLines(out); // every line parses: nothing half-written
    assert.ok(partial.length >= 1 && partial.length < 6, `${partial.length} answered before the stop`);
    const rest = await run([input, '--server', g.url, '--output', out, '--concurrency', '3']);
    assert.equal(rest.code, 0, rest.stderr);
    assert.deepEqual(
      outputLines(out)
        .map((l) => l.custom_id)
        .sort(),
      ids,
    );
  } finally {
    await g.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
