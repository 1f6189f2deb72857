import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/util.js';
import { RED_PIXEL_PNG } from '../helpers/glimpse.js';
import { waitFor } from '../helpers/wait.js';

const CLI = join(import.meta.dirname, '../../src/cli/main.ts');

function run(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function output(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'exit');
  return { code, stdout, stderr };
}

/** Start `glimpse serve` on a free port and wait for its "serving" log line. */
async function serve(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; url: string; logs: () => string }> {
  const child = run(['serve', '--port', '0', ...args], env);
  let logs = '';
  child.stdout!.on('data', (d) => (logs += d));
  child.stderr!.on('data', (d) => (logs += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('serve did not start: ' + logs));
    }, 60_000);
    child.stdout!.on('data', () => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(logs);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', () => reject(new Error('serve exited: ' + logs)));
  });
  return { child, url, logs: () => logs };
}

test('serve refuses an invalid flag value with a clear message and exit code 2', async () => {
  const { code, stderr } = await output(run(['serve', '--engine', 'quantum']));
  assert.equal(code, 2);
  assert.match(stderr, /engine/);
  assert.match(stderr, /--engine/);
  assert.match(stderr, /GLIMPSE_ENGINE/);
});

test('serve reads settings from env and from a config file, flags winning', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-cli-'));
  const file = join(dir, 'glimpse.yaml');
  writeFileSync(file, 'engine: simulated\nmodelName: from-file\nsimulated:\n  ttftMs: 1\n');
  const s = await serve(['--config', file, '--log-format', 'json'], { GLIMPSE_MODEL_NAME: 'from-env' });
  try {
    const health = await (await fetch(s.url + '/health')).json();
    assert.equal(health.engine, 'simulated');
    assert.equal(health.model, 'from-env');
    // JSON logs: every line is an object
    for (const line of s.logs().trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
  } finally {
    s.child.kill('SIGTERM');
    const [code] = await once(s.child, 'exit');
    assert.equal(code, 0);
  }
});

test('serve refuses a public bind without API keys unless told otherwise', async () => {
  const { code, stdout } = await output(run(['serve', '--host', '0.0.0.0', '--engine', 'simulated']));
  assert.equal(code, 2);
  assert.match(stdout, /Refusing to bind 0\.0\.0\.0/);
});

test('ask streams an answer about an image file to the terminal', async () => {
  const s = await serve(['--engine', 'simulated']);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'glimpse-ask-'));
    const img = join(dir, 'red.png');
    writeFileSync(img, Buffer.from(RED_PIXEL_PNG.split(',')[1]!, 'base64'));
    const { code, stdout, stderr } = await output(
      run(['ask', img, 'What is this?', '--server', s.url, '--max-tokens', '6']),
    );
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim().split(' ').length, 6);
  } finally {
    s.child.kill('SIGTERM');
    await once(s.child, 'exit');
  }
});

test('ask reports a server error with its code and a non-zero exit', async () => {
  const s = await serve(['--engine', 'simulated']);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'glimpse-ask-'));
    const img = join(dir, 'bad.png');
    writeFileSync(img, 'not an image');
    const { code, stderr } = await output(run(['ask', img, 'What is this?', '--server', s.url]));
    assert.equal(code, 1);
    assert.match(stderr, /invalid_image/);
  } finally {
    s.child.kill('SIGTERM');
    await once(s.child, 'exit');
  }
});

test('ask says so when the server cannot be reached', async () => {
  const { code, stderr } = await output(run(['ask', 'x.png', 'hi', '--server', 'http://127.0.0.1:9']));
  assert.notEqual(code, 0);
  assert.match(stderr, /cannot (read|reach)/);
});

/** Whether a process has a handler for SIGHUP (Linux: SigCgt in /proc/PID/status, SIGHUP is bit 0). */
function catchesSighup(pid: number): boolean {
  const line = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return line !== null && (BigInt('0x' + line[1]) & 1n) === 1n;
}

test('a reload (SIGHUP) while glimpse is still starting is held, not fatal: the server comes up and reloads once it can', async (t) => {
  if (process.platform !== 'linux') return t.skip('reads /proc');
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-hup-early-'));
  const keys = join(dir, 'keys');
  writeFileSync(keys, 'ops:sk-ops-early-0001\n');
  const port = await freePort();
  const child = run(['serve', '--engine', 'simulated', '--port', String(port), '--api-keys-file', keys]);
  let logs = '';
  child.stdout!.on('data', (d) => (logs += d));
  child.stderr!.on('data', (d) => (logs += d));
  try {
    await waitFor(() => child.exitCode !== null || catchesSighup(child.pid!), 'a SIGHUP handler', 30_000);
    const up = await fetch(`http://127.0.0.1:${port}/livez`).then(
      () => true,
      () => false,
    );
    assert.equal(up, false, 'the handler is there before the server listens (this tests the start)');
    child.kill('SIGHUP');
    await waitFor(
      () => child.exitCode !== null || /"msg":"API keys (reloaded|file unchanged)"/.test(logs),
      'the held reload',
      60_000,
    );
    assert.equal(child.exitCode, null, `the reload during start ended the process:\n${logs}`);
    const models = await fetch(`http://127.0.0.1:${port}/v1/models`, {
      headers: { authorization: 'Bearer sk-ops-early-0001' },
    });
    assert.equal(models.status, 200);
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
  }
});

test('SIGHUP re-reads the API keys file: a rotated key applies without a restart, and it is logged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-hup-'));
  const keys = join(dir, 'keys');
  writeFileSync(keys, 'ops:sk-ops-first-0001\n');
  // No timer (0): only the signal re-reads the file.
  const s = await serve(['--engine', 'simulated', '--api-keys-file', keys, '--api-keys-reload-seconds', '0']);
  const status = (key: string) =>
    fetch(s.url + '/v1/models', { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
  try {
    assert.equal(await status('sk-ops-first-0001'), 200);
    writeFileSync(keys, 'ops:sk-ops-second-0002\n');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await status('sk-ops-second-0002'), 401, 'not before the signal');
    s.child.kill('SIGHUP');
    const deadline = Date.now() + 5000;
    while (!/"msg":"API keys reloaded"/.test(s.logs())) {
      assert.ok(Date.now() < deadline, `no reload logged:\n${s.logs()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await status('sk-ops-second-0002'), 200);
    assert.equal(await status('sk-ops-first-0001'), 401);
    assert.equal(s.child.exitCode, null, 'SIGHUP does not stop the server');
  } finally {
    s.child.kill('SIGTERM');
    await once(s.child, 'exit');
  }
});
