/**
 * The embedded job store's own promises, beyond the API tests both stores share (jobs.test.ts):
 * the journal survives a reopen and a torn last line, a full disk (a real tmpfs) refuses a change
 * whole, one live process owns a state directory, and a job whose process keeps dying fails after
 * maxAttempts starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedJobQueue, Journal, type JobSettings } from '../../src/jobs/index.js';
import { EmbeddedBatchStore } from '../../src/jobs/batch-store.js';
import { readdirSync } from 'node:fs';
import { GlimpseError } from '../../src/core/index.js';

const settings: JobSettings = {
  workers: 0,
  maxQueued: 100,
  resultTtlSeconds: 60,
  claimIdleSeconds: 1,
  maxAttempts: 2,
  webhookAllowPrivateNetworks: false,
  webhookTimeoutMs: 1000,
  webhookMaxAttempts: 1,
  webhookBackoffMs: 0,
};
const quiet = { info() {}, warn() {} };

test('the journal keeps what was acknowledged across a reopen, and a torn last line is dropped and cut off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-journal-'));
  try {
    const path = join(dir, 'journal.jsonl');
    const j = await Journal.open(path);
    await j.put([
      ['a', { n: '1' }],
      ['b', { n: '2' }],
    ]);
    await j.patch('a', { n: '3' });
    await j.remove(['b']);
    await j.close();
    appendFileSync(path, '{"k":"c","v":{"n":'); // a crash in the middle of a write
    const again = await Journal.open(path);
    assert.deepEqual([...again.values()], [['a', { n: '3' }]]);
    await again.put([['d', { n: '4' }]]);
    await again.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l) as unknown),
      [
        { k: 'a', v: { n: '3' } },
        { k: 'd', v: { n: '4' } },
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;

test(
  'a full disk: the change is refused with storage_full, undone in memory, and nothing of it is in the file',
  { skip: canMount ? false : 'needs root to mount a small tmpfs' },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'glimpse-full-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]).status === 0;
    if (!mounted) return t.skip('mount refused here');
    try {
      const path = join(dir, 'journal.jsonl');
      const j = await Journal.open(path);
      const big = 'x'.repeat(8 * 1024);
      let kept = 0;
      let refused: unknown;
      for (let i = 0; i < 32 && !refused; i++) {
        await j.put([[`r${i}`, { big }]]).then(
          () => kept++,
          (err: unknown) => (refused = err),
        );
      }
      assert.ok(refused instanceof GlimpseError, 'the disk filled up');
      assert.equal(refused.code, 'storage_full');
      assert.equal(refused.status, 507);
      assert.equal(j.count, kept, 'the refused record is not visible');
      await j.close();
      const again = await Journal.open(path);
      assert.equal(again.count, kept, 'the file holds exactly the acknowledged records');
      await again.close();
    } finally {
      const u = spawnSync('umount', [dir], { encoding: 'utf8' });
      if (u.status !== 0) console.log('umount', u.stderr);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'a file upload on a full disk: storage_full, no file and no temporary left, no record',
  { skip: canMount ? false : 'needs root to mount a small tmpfs' },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'glimpse-full-files-'));
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]).status !== 0)
      return t.skip('mount refused here');
    const store = new EmbeddedBatchStore(dir);
    try {
      await store.putFile({ id: 'file-small', key: '', created_at: '1' }, Buffer.from('{}\n'));
      await assert.rejects(
        store.putFile({ id: 'file-big', key: '', created_at: '2' }, Buffer.alloc(256 * 1024, 'x')),
        (err: GlimpseError) => err.code === 'storage_full',
      );
      assert.deepEqual(
        (await store.files('')).map((f) => f.id),
        ['file-small'],
      );
      assert.deepEqual(readdirSync(join(dir, 'files')).sort(), ['file-small', 'index.jsonl']);
    } finally {
      await store.close();
      spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('what clients read is what a crash would leave: a change being written is not shown until it is (journal, and the batch store on it)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-durable-'));
  try {
    const j = await Journal.open(join(dir, 'journal.jsonl'));
    await j.put([['a', { n: '1' }]]);
    const writing = j.put([
      ['a', { n: '2' }],
      ['b', { n: '1' }],
    ]);
    const removing = j.remove(['a']);
    assert.equal(j.get('a'), undefined, 'the store itself acts on every change');
    assert.deepEqual(j.durable('a'), { n: '1' }, 'a client still sees what is on disk');
    assert.equal(j.durable('b'), undefined);
    assert.deepEqual([...j.durableValues()], [['a', { n: '1' }]]);
    await Promise.all([writing, removing]);
    assert.equal(j.durable('a'), undefined);
    assert.deepEqual([...j.durableValues()], [['b', { n: '1' }]]);
    await j.close();

    const store = new EmbeddedBatchStore(join(dir, 'state'));
    const batch = { id: 'batch_' + '1'.repeat(24), key: 'k', status: 'in_progress', created_at: '1' };
    await store.putBatch(batch, ['job_1'], ['line-1']);
    const moving = store.patchBatch(batch.id, { status: 'finalizing' }, ['in_progress']);
    await new Promise((r) => setImmediate(r));
    assert.equal((await store.batch(batch.id))?.status, 'in_progress', 'not shown before it is written');
    assert.deepEqual(
      (await store.batches('k')).map((b) => b.status),
      ['in_progress'],
    );
    assert.equal(await moving, true);
    assert.equal((await store.batch(batch.id))?.status, 'finalizing');
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a state directory held by another live process: jobs_unavailable naming it; a lock left by a dead one is taken', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-lock-'));
  try {
    mkdirSync(join(dir, 'jobs'));
    writeFileSync(join(dir, 'jobs', 'lock'), String(process.ppid));
    const q = new EmbeddedJobQueue(dir, settings, async () => ({}), quiet);
    await assert.rejects(
      q.get('job_' + '0'.repeat(24), undefined),
      (err: GlimpseError) => err.code === 'jobs_unavailable' && err.message.includes(String(process.ppid)),
    );
    await q.close();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    }).stdout;
    writeFileSync(join(dir, 'jobs', 'lock'), dead);
    const taken = new EmbeddedJobQueue(dir, settings, async () => ({}), quiet);
    await assert.rejects(
      taken.get('job_' + '0'.repeat(24), undefined),
      (err: GlimpseError) => err.code === 'not_found',
    );
    assert.equal(readFileSync(join(dir, 'jobs', 'lock'), 'utf8'), String(process.pid));
    await taken.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a job whose process died at each of its maxAttempts starts fails with job_failed at the next opening', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-attempts-'));
  try {
    const submitter = new EmbeddedJobQueue(dir, settings, async () => ({}), quiet);
    const job = await submitter.submit({ messages: [] }, { model: 'm' });
    await submitter.close();
    // What a process killed mid-job leaves: the job running, its start counted (twice = maxAttempts).
    const path = join(dir, 'jobs', 'journal.jsonl');
    const rec = (JSON.parse(readFileSync(path, 'utf8').trim().split('\n').at(-1)!) as { v: Record<string, string> }).v;
    appendFileSync(path, JSON.stringify({ k: job.id, v: { ...rec, status: 'running', attempts: '2' } }) + '\n');
    let ran = 0;
    const next = new EmbeddedJobQueue(dir, { ...settings, workers: 1 }, async () => ran++, quiet);
    next.start();
    let view = await next.get(job.id, undefined);
    for (let i = 0; view.status !== 'failed' && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 20));
      view = await next.get(job.id, undefined);
    }
    await next.close();
    assert.equal(view.status, 'failed');
    assert.equal(view.error?.code, 'job_failed');
    assert.equal(ran, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
