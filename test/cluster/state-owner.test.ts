/**
 * `glimpse serve --workers 2` without Redis: worker 1 keeps the state directory and worker 2
 * forwards jobs, files and batches to it, so work submitted through either worker is seen from
 * both and runs to its end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, type RunningCluster } from '../helpers/cluster.js';

const body = JSON.stringify({ max_tokens: 3, messages: [{ role: 'user', content: 'Describe.' }] });
/** Waits are bounded by time, not by a count of asks: on a loaded machine each ask takes longer. */
const within = (ms: number) => {
  const end = Date.now() + ms;
  return () => Date.now() < end;
};

/** Ask until the given worker answers (connections are handed out in turn). */
async function askVia(cluster: RunningCluster, worker: string, path: string, init?: { method: string; body?: string }) {
  for (let i = 0; i < 50; i++) {
    const a = await cluster.ask(path, init);
    if (a.worker === worker) return a;
  }
  throw new Error(`worker ${worker} never answered ${path}`);
}

test(
  'two workers, no Redis: a job or batch submitted through either worker is visible from both and completes; a restarted worker 1 keeps the store',
  { timeout: 180_000 },
  async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'glimpse-state-'));
    const cluster = await startCluster(['--engine', 'simulated', '--workers', '2', '--state-dir', stateDir]);
    try {
      const ids: string[] = [];
      for (const worker of ['2', '1']) {
        const a = await askVia(cluster, worker, '/v1/jobs', { method: 'POST', body });
        assert.equal(a.status, 202, a.body);
        ids.push((JSON.parse(a.body) as { id: string }).id);
      }
      for (const id of ids) {
        for (const worker of ['1', '2']) {
          for (const open = within(30_000); ;) {
            const a = await askVia(cluster, worker, `/v1/jobs/${id}`);
            assert.equal(a.status, 200, a.body);
            const job = JSON.parse(a.body) as { status: string; result?: { usage: { completion_tokens: number } } };
            if (job.status === 'succeeded') {
              assert.equal(job.result?.usage.completion_tokens, 3);
              break;
            }
            assert.ok(open(), `job ${id} did not end: ${a.body}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }

      // A batch through worker 2: its upload (multipart) and creation are forwarded whole.
      const jsonl =
        ['a', 'b']
          .map((id) =>
            JSON.stringify({
              custom_id: id,
              method: 'POST',
              url: '/v1/chat/completions',
              body: JSON.parse(body) as object,
            }),
          )
          .join('\n') + '\n';
      let file: { id: string } | undefined;
      for (let i = 0; i < 50 && !file; i++) {
        const form = new FormData();
        form.append('purpose', 'batch');
        form.append('file', new Blob([jsonl]), 'in.jsonl');
        // A fresh connection each time (the primary hands them out in turn) until worker 2 takes one.
        const r = await fetch(cluster.base + '/v1/files', {
          method: 'POST',
          body: form,
          headers: { connection: 'close' },
        });
        const text = await r.text();
        assert.equal(r.status, 200, text);
        if (r.headers.get('x-glimpse-worker') === '2') file = JSON.parse(text) as { id: string };
      }
      assert.ok(file, 'worker 2 took an upload');
      const created = await askVia(cluster, '2', '/v1/batches', {
        method: 'POST',
        body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
      });
      assert.equal(created.status, 200, created.body);
      const batchId = (JSON.parse(created.body) as { id: string }).id;
      for (let i = 0, open = within(30_000); ; i++) {
        const a = await askVia(cluster, i % 2 ? '1' : '2', `/v1/batches/${batchId}`);
        const b = JSON.parse(a.body) as { status: string; request_counts: object };
        if (b.status === 'completed') {
          assert.deepEqual(b.request_counts, { total: 2, completed: 2, failed: 0 });
          break;
        }
        assert.ok(open(), `batch did not end: ${a.body}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.doesNotMatch(cluster.logs(), /in use by process/, 'only one process opened the store');

      // Worker 1 killed: until its replacement serves, worker 2 answers 503 jobs_unavailable; then the
      // replacement has the same store (the journal), and submissions through worker 2 work again.
      process.kill(cluster.pids().get('1')!, 'SIGKILL');
      // Asked before the primary has seen the death, a connection can be handed to the dead worker
      // and never answered (as for any client of a cluster): wait until the primary knows.
      for (const open = within(30_000); !cluster.logs().includes('worker exited unasked');) {
        assert.ok(open(), 'the primary saw worker 1 exit');
        await new Promise((r) => setTimeout(r, 25));
      }
      // The replacement is a fresh process (Node, tsx, the whole server) started after a backoff: on a
      // loaded machine that takes seconds, as the cluster's own start does.
      for (const open = within(60_000); ;) {
        const a = await askVia(cluster, '2', '/v1/jobs', { method: 'POST', body });
        if (a.status === 202) break;
        assert.equal(a.status, 503, a.body);
        assert.equal((JSON.parse(a.body) as { error: { code: string } }).error.code, 'jobs_unavailable');
        assert.ok(open(), 'worker 1 came back');
        await new Promise((r) => setTimeout(r, 25));
      }
      const kept = await askVia(cluster, '2', `/v1/jobs/${ids[0]}`);
      assert.equal((JSON.parse(kept.body) as { status: string }).status, 'succeeded', kept.body);
    } finally {
      await cluster.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  },
);
