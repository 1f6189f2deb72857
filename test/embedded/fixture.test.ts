import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FIXTURE } from './helpers.js';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
}

test('npm run make-tiny-vlm regenerates the committed fixture byte for byte', () => {
  const out = mkdtempSync(join(tmpdir(), 'glimpse-tiny-'));
  try {
    execFileSync(process.execPath, ['--import', 'tsx', new URL('../../scripts/make-tiny-vlm.ts', import.meta.url).pathname, out], { stdio: 'pipe' });
    const committed = files(FIXTURE).map((f) => relative(FIXTURE, f)).sort();
    assert.deepEqual(files(out).map((f) => relative(out, f)).sort(), committed);
    for (const f of committed) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(FIXTURE, f))), `${f} differs: re-run npm run make-tiny-vlm and commit`);
    const bytes = committed.reduce((a, f) => a + statSync(join(FIXTURE, f)).size, 0);
    assert.ok(bytes < 2 * 1024 * 1024, `fixture is ${bytes} bytes`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
