import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProgress, ProgressTracker, type DownloadProgress } from '../../src/engines/embedded/download.js';

test('the progress line shows bytes done and total, percent, rate and ETA', () => {
  const line = formatProgress('SmolVLM', {
    file: 'onnx/x.onnx',
    loaded: 50 * 1024 ** 2,
    total: 200 * 1024 ** 2,
    rate: 10 * 1024 ** 2,
    etaSeconds: 15,
    done: false,
  });
  assert.match(line, /50\.0 MB \/ 200\.0 MB/);
  assert.match(line, /25%/);
  assert.match(line, /10\.0 MB\/s/);
  assert.match(line, /ETA 0:15/);
  assert.match(line, /\[######\.{18}\]/);
});

test('the tracker counts resumed bytes as done but not toward the rate, and estimates the time left', () => {
  let now = 0;
  const seen: DownloadProgress[] = [];
  const t = new ProgressTracker(
    1000,
    (p) => seen.push(p),
    () => now,
  );
  t.add('a', 0, 400, true); // 400 bytes already on disk from an earlier run
  for (let i = 0; i < 5; i++) {
    now += 1000;
    t.add('a', 100, 400, false); // 100 bytes per second from here
  }
  const last = seen.at(-1)!;
  assert.equal(last.loaded, 900);
  assert.ok(Math.abs(last.rate - 100) < 1e-9, `rate ${last.rate}`);
  assert.ok(Math.abs(last.etaSeconds! - 1) < 1e-9, `eta ${last.etaSeconds}`);
  t.finish('a');
  assert.equal(seen.at(-1)!.done, true);
});
