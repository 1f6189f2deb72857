/**
 * The one request sent ahead to a replica whose limit is learned from its gauges: only while one
 * of its answers is likely to end within a few steps, judged from the lengths of recent answers
 * and each request's max_tokens; always before any answer has been seen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerLengths, HORIZON, SOON } from '../../src/engines/upstream/turnover.js';
import type { PoolMember, Progress, UpstreamPool } from '../../src/engines/upstream/pool.js';
import { offlinePool } from '../helpers/pool.js';

test('answers of one length: an answer is sure to end only within the horizon of that length', () => {
  const l = new AnswerLengths();
  assert.equal(l.known, false);
  for (let i = 0; i < 20; i++) l.record(32);
  assert.equal(l.known, true);
  assert.equal(l.weight(0), 0);
  assert.equal(l.weight(32 - HORIZON - 1), 0, 'one step beyond the horizon from the end: cannot end within it');
  assert.ok(l.weight(32 - HORIZON) > 20, 'the horizon from the end: sure');
  assert.ok(l.weight(40) > 20, 'longer than any seen: overdue, taken as ending');
  assert.ok(l.weight(0, 2) > 20, 'max_tokens 2: ends within the horizon whatever the lengths say');
});

test('answers of varied lengths: the chance is the share of the answers still going that end within the horizon', () => {
  const l = new AnswerLengths();
  // 10, 20, ..., 100 tokens, twice over.
  for (let r = 0; r < 2; r++) for (let n = 10; n <= 100; n += 10) l.record(n);
  assert.ok(HORIZON < 10);
  // At 9 tokens all 20 are going; only those of 10 end within the horizon: 2 of 20.
  assert.ok(Math.abs(l.weight(9) - -Math.log(1 - 2 / 20)) < 1e-9, String(l.weight(9)));
  // At 11 tokens, 18 are going, none ends before 20.
  assert.equal(l.weight(11), 0);
  // At 97, the two of 100 are going and both end by 100: sure.
  assert.ok(l.weight(97) > 20);
});

function metricsPool(): { pool: UpstreamPool; m: PoolMember; grew: () => number } {
  const pool = offlinePool(['http://127.0.0.1:9/a/v1'], { initialLimit: 4 });
  const m = pool.members[0]!;
  // Learned from the gauges: a queue formed with four running.
  m.limit.fromGauges(4, 4, true, 8);
  let n = 0;
  pool.onCapacityChange(() => n++);
  return { pool, m, grew: () => n };
}

test('a replica sends one ahead until answers are known, then only while one of its answers nears its end', async (t) => {
  const { pool, m, grew } = metricsPool();
  t.after(() => pool.close());
  assert.equal(m.limit.runs, 4);
  assert.equal(pool.capacity(), 5, 'no answer seen yet: one sent ahead, as before');
  // Four answers of 30 steps run there; the pool learns their length as they end.
  const L = 30;
  const tracks: Progress[] = [];
  for (let i = 0; i < 4; i++) {
    pool.acquire(new Set());
    tracks.push({ weight: 0 });
    pool.progress(m, tracks[i]!, 0, 1000);
  }
  for (let s = 1; s <= L; s++) for (const tr of tracks) pool.progress(m, tr, s, 1000);
  for (const tr of tracks) pool.release(m, 'success', { sentWith: 4, track: tr, steps: L });
  assert.equal(m.outstanding, 0);
  assert.equal(m.soon, 0);
  // Four new ones, all at their start: none ends within the horizon, nothing is sent ahead.
  const fresh: Progress[] = [];
  for (let i = 0; i < 4; i++) {
    pool.acquire(new Set());
    fresh.push({ weight: 0 });
    pool.progress(m, fresh[i]!, 0, 1000);
  }
  assert.equal(pool.capacity(), 4, 'the batch just started: nothing sent ahead');
  const before = grew();
  for (let s = 1; s < L - HORIZON; s++) for (const tr of fresh) pool.progress(m, tr, s, 1000);
  assert.equal(pool.capacity(), 4, 'one step more than the horizon to go');
  pool.progress(m, fresh[0]!, L - HORIZON, 1000);
  assert.ok(m.soon >= SOON);
  assert.equal(pool.capacity(), 5, 'one answer the horizon from its end: one sent ahead');
  assert.equal(grew(), before + 1, 'the scheduler is told the capacity rose');
  pool.release(m, 'success', { sentWith: 4, track: fresh[0]!, steps: L });
  assert.equal(pool.capacity(), 4, 'it ended; the others are not as close');
  // max_tokens says when an answer must end, whatever the lengths seen.
  const capped: Progress = { weight: 0 };
  pool.acquire(new Set());
  pool.progress(m, capped, 0, 2);
  assert.equal(pool.capacity(), 5, 'an answer capped at two tokens ends within the horizon');
});

test('configured and adaptive limits send nothing ahead', async (t) => {
  const pool = offlinePool(['http://127.0.0.1:9/a/v1#max=3', 'http://127.0.0.1:9/b/v1'], { initialLimit: 4 });
  t.after(() => pool.close());
  assert.equal(pool.capacity(), 7);
  const tr: Progress = { weight: 0 };
  pool.progress(pool.members[0]!, tr, 0, 1);
  assert.equal(pool.capacity(), 7);
});
