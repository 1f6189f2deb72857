/**
 * deploy/systemd/glimpse.service: checked by systemd's own tools, and its command line and
 * environment run as systemd would start them (minus the sandbox, which needs systemd as PID 1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromEnv, loadConfig } from '../../src/config/index.js';
import { freePort } from '../../bench/util.js';

const UNIT = new URL('../../deploy/systemd/glimpse.service', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;

/** [Service] settings of the unit, each key with every value it is given, in order. */
function serviceSettings(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of readFileSync(UNIT, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('[')) section = line;
    else if (section === '[Service]') {
      const i = line.indexOf('=');
      out.set(line.slice(0, i), [...(out.get(line.slice(0, i)) ?? []), line.slice(i + 1)]);
    }
  }
  return out;
}

/** The Environment= lines as variables. */
function unitEnv(s: Map<string, string[]>): Record<string, string> {
  return Object.fromEntries((s.get('Environment') ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

test('systemd-analyze verify accepts the unit without a single warning', { skip: analyze ? false : 'systemd-analyze not installed' }, () => {
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', 'no unknown keys, no bad values');
});

test('systemd-analyze security rates the sandbox 2.0 or better ("OK")', { skip: analyze ? false : 'systemd-analyze not installed' }, () => {
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT], { encoding: 'utf8' });
  const m = /Overall exposure level for glimpse\.service: ([\d.]+)/.exec(r.stdout);
  assert.ok(m, r.stdout + r.stderr);
  assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]}`);
});

test('every GLIMPSE_ variable the unit sets is a setting glimpse reads, and systemd outwaits the graceful stop', () => {
  const s = serviceSettings();
  const env = unitEnv(s);
  const glimpseVars = Object.keys(env).filter((k) => k.startsWith('GLIMPSE_'));
  assert.ok(glimpseVars.length >= 3);
  for (const name of glimpseVars) assert.ok(Object.keys(configFromEnv({ [name]: env[name] })).length === 1, `${name} is not a glimpse setting`);
  const config = loadConfig({ env });
  assert.equal(config.cacheDir, '/var/cache/glimpse/models');
  assert.ok(config.cacheDir.startsWith('/var/cache/' + s.get('CacheDirectory')![0]), 'models go to the CacheDirectory systemd creates');
  assert.equal(config.host, '127.0.0.1', 'behind nginx, loopback only');
  assert.equal(s.get('KillSignal')![0], 'SIGTERM');
  assert.ok(Number(s.get('TimeoutStopSec')![0]) > config.graceShutdownSeconds + 5, 'systemd waits past --grace-shutdown-seconds before SIGKILL');
});

test('its ExecStart, with its environment, serves; ExecReload rotates the API keys; it stops cleanly on the KillSignal', async () => {
  const s = serviceSettings();
  const [exe, ...args] = s.get('ExecStart')![0]!.split(/\s+/);
  // The unit names the system's node and an install in /opt/glimpse; here they are this checkout and this node.
  const command = exe === '/usr/bin/node' && !existsSync(exe) ? process.execPath : exe!;
  const argv = args.map((a) => a.replace('/opt/glimpse', ROOT));
  const port = await freePort();
  const keys = join(mkdtempSync(join(tmpdir(), 'glimpse-unit-keys-')), 'keys');
  writeFileSync(keys, 'site:sk-site-first-0001\n');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...unitEnv(s),
    GLIMPSE_PORT: String(port),
    GLIMPSE_CACHE_DIR: mkdtempSync(join(tmpdir(), 'glimpse-unit-cache-')),
    // What a site's /etc/glimpse/glimpse.env would add; the embedded default would download a model.
    GLIMPSE_ENGINE: 'simulated',
    GLIMPSE_API_KEYS_FILE: keys,
    GLIMPSE_API_KEYS_RELOAD_SECONDS: '0',
  };
  const child = spawn(command, argv, { cwd: s.get('WorkingDirectory')![0]!.replace('/opt/glimpse', ROOT), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c));
  child.stderr!.on('data', (c: Buffer) => (output += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.status, () => 0);
      if (ready === 200) break;
      assert.equal(child.exitCode, null, `glimpse exited early:\n${output}`);
      assert.ok(Date.now() < deadline, `not ready in 30 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Logs are JSON lines, as GLIMPSE_LOG_FORMAT=json asks (what journald and log shippers take).
    const firstLine = output.split('\n').find((l) => l.trim());
    assert.doesNotThrow(() => JSON.parse(firstLine!), `not a JSON log line: ${firstLine}`);

    // systemctl reload runs ExecReload with $MAINPID: the rotated keys file applies, the service stays up.
    const modelsWith = (key: string) => fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
    assert.equal(await modelsWith('sk-site-first-0001'), 200);
    writeFileSync(keys, 'site:sk-site-second-0002\n');
    const [reloadExe, ...reloadArgs] = s.get('ExecReload')![0]!.split(/\s+/).map((a) => a.replace('$MAINPID', String(child.pid)));
    assert.equal(spawnSync(reloadExe!, reloadArgs).status, 0);
    const reloadDeadline = Date.now() + 5000;
    while (!output.includes('"msg":"API keys reloaded"')) {
      assert.ok(Date.now() < reloadDeadline, `no reload logged:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await modelsWith('sk-site-second-0002'), 200);
    assert.equal(await modelsWith('sk-site-first-0001'), 401);

    child.kill(s.get('KillSignal')![0] as NodeJS.Signals);
    const code = await Promise.race([exited, new Promise<'late'>((r) => setTimeout(() => r('late'), Number(s.get('TimeoutStopSec')![0]) * 1000))]);
    assert.equal(code, 0, `exit after SIGTERM: ${code}\n${output}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
