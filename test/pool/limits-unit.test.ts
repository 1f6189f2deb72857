/** The rules of a replica's limit and of image affinity, fed readings and samples directly. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  FIRST_PROBE_EVERY,
  metricsUrl,
  parseServerGauges,
  ReplicaLimit,
  splitLimit,
} from '../../src/engines/upstream/limits.js';
import { ImageAffinity, imageAffinityKey } from '../../src/engines/upstream/affinity.js';
import { GlimpseError } from '../../src/core/index.js';

const VLLM = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="zai-org/GLM-4.6V-Flash"} 7.0
vllm:num_requests_running{engine="1",model_name="zai-org/GLM-4.6V-Flash"} 1.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="zai-org/GLM-4.6V-Flash"} 2.0
vllm:num_requests_waiting{engine="1",model_name="zai-org/GLM-4.6V-Flash"} 0.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="a b"} 12.0
`;

test('gauges are read from vLLM (summed over engines) and SGLang exposition text; other text gives none', () => {
  assert.deepEqual(parseServerGauges(VLLM), { server: 'vllm', running: 8, waiting: 2 });
  assert.deepEqual(
    parseServerGauges('sglang:num_running_reqs{model_name="m"} 3.0\nsglang:num_queue_reqs{model_name="m"} 0.0\n'),
    { server: 'sglang', running: 3, waiting: 0 },
  );
  assert.equal(parseServerGauges('# nothing\nprocess_cpu_seconds_total 1.5\n'), undefined);
  assert.equal(parseServerGauges('vllm:num_requests_running 1\n'), undefined, 'running without waiting says nothing');
});

test('metrics URL sits at the server root; #max= on a URL is its limit, and a bad one is refused', () => {
  assert.equal(metricsUrl('http://gpu1:8000/v1'), 'http://gpu1:8000/metrics');
  assert.equal(metricsUrl('http://gpu1:8000/v1/'), 'http://gpu1:8000/metrics');
  assert.deepEqual(splitLimit('http://gpu1:8000/v1#max=64'), { base: 'http://gpu1:8000/v1', max: 64 });
  assert.deepEqual(splitLimit('http://gpu1:8000/v1'), { base: 'http://gpu1:8000/v1' });
  assert.throws(
    () => splitLimit('http://gpu1:8000/v1#max=0'),
    (e: unknown) => e instanceof GlimpseError && e.code === 'invalid_request',
  );
});

test("learned from gauges in glimpse's own terms: doubling while saturated and nothing waits; when a queue forms, what glimpse has there less what waits, and one more sent ahead only while told to", () => {
  let l = new ReplicaLimit(undefined, { initial: 4, max: 1024 });
  assert.equal(l.source, 'adaptive');
  assert.equal(l.fromGauges(2, 0, false, 2), false, 'not saturated: no growth');
  assert.deepEqual(
    [l.runs, l.current],
    [4, 5],
    'learned from gauges: what runs, and one sent ahead unless told otherwise',
  );
  assert.equal(
    l.fromGauges(4, 0, true, 4),
    false,
    'slow start: a server that runs just what glimpse has there, at the limit, may be full: no proof of room',
  );
  assert.equal(l.fromGauges(5, 0, true, 5), true, 'it runs the one sent ahead too: room');
  assert.deepEqual([l.runs, l.source], [8, 'metrics']);
  assert.equal(
    l.fromGauges(8, 0, true, 9),
    false,
    'slow start: the one sent ahead is not running yet (on the wire, or between steps): no proof of room',
  );
  assert.equal(
    l.fromGauges(8, 0, true, 8),
    false,
    'right after a turnover (the one sent ahead started, the next not sent yet): no proof of room',
  );
  assert.equal(l.fromGauges(9, 0, true, 9), true);
  assert.equal(l.runs, 16, 'slow start: doubles until the first queue');
  // From here, a server that runs 8: glimpse sent it 16 (a limit of 16 from the start).
  l = new ReplicaLimit(undefined, { initial: 16, max: 1024 });
  l.fromGauges(8, 7, true, 16);
  assert.equal(l.runs, 9, 'glimpse had 16 there, 7 waiting: 9 run or travel');
  assert.equal(l.setAhead(false), false);
  assert.equal(l.current, 9, 'no sequence about to end: nothing sent ahead');
  assert.equal(l.setAhead(true), true, 'the allowance rose: the caller tells the scheduler');
  assert.equal(l.current, 10);
  l.fromGauges(8, 0, false, 8);
  l.fromGauges(8, 1, true, 9);
  assert.equal(l.runs, 9, 'one waiting once: the one sent ahead');
  l.fromGauges(8, 1, true, 9);
  assert.equal(
    l.runs,
    8,
    'one waiting reading after reading: a queue of one, so what runs is what glimpse has less it',
  );
  // After the first queue, growth is a probe, and only every few readings.
  const P = FIRST_PROBE_EVERY;
  for (let i = 0; i < P - 1; i++)
    assert.equal(l.fromGauges(8, 0, true, 8), false, `reading ${i + 1}: too soon to probe`);
  assert.equal(l.fromGauges(6, 0, false, 6), false, 'nothing waits but glimpse did not fill it: no growth');
  assert.equal(l.fromGauges(8, 0, true, 8), true, 'the server runs all glimpse has there: a probe');
  assert.equal(l.runs, 9);
  l.fromGauges(8, 1, true, 9);
  assert.equal(l.runs, 8, 'the server did not run the probe (a wait while it runs 8): undone at once');
  for (let i = 0; i < 2 * P - 1; i++)
    assert.equal(l.fromGauges(8, 0, true, 8), false, `reading ${i + 1}: a failed probe doubles the wait`);
  assert.equal(l.fromGauges(8, 0, true, 8), true, 'the next probe, twice as many readings on');
  l.fromGauges(9, 0, true, 9);
  assert.equal(l.runs, 9, 'the server ran it: kept');
  for (let i = 0; i < P - 2; i++) assert.equal(l.fromGauges(9, 0, true, 9), false);
  assert.equal(l.fromGauges(9, 0, true, 9), true, 'a probe that held halves the wait for the next');
  l.fromGauges(10, 0, true, 10);
  assert.equal(l.runs, 10, 'the server runs it: kept');
  l.fromGauges(10, 3, true, 11);
  assert.equal(l.runs, 8, 'a queue of three: back to what runs or travels');
  l.fromGauges(10, 4, true, 9);
  assert.equal(l.runs, 5, 'a reading taken while answers came and went sets it too low');
  assert.equal(l.fromGauges(5, 0, true, 5), true, 'below what the server ran with a queue: no probe needed');
  assert.equal(l.fromGauges(6, 0, true, 6), true);
  assert.equal(l.runs, 7, 'back up one per reading');
  l.fromGauges(3, 5, true, 7);
  assert.equal(l.runs, 7, 'waiting while the server runs fewer than it has: between steps, once');
  l.fromGauges(1, 30, true, 3);
  l.fromGauges(1, 30, true, 3);
  assert.equal(l.runs, 1, 'three readings in a row: it runs fewer now; another client fills it: one there at least');
  l.metricsLost();
  assert.equal(l.source, 'adaptive');
  assert.equal(l.current, 1, 'adaptive again: nothing sent ahead');
  const fixed = new ReplicaLimit(64, { initial: 4, max: 1024 });
  fixed.fromGauges(1, 50, true, 64);
  fixed.refused();
  assert.deepEqual([fixed.current, fixed.source], [64, 'configured']);
});

test('adaptive: grows while the time to first token holds, shrinks when it climbs (queueing at the server) and on refusals', () => {
  const l = new ReplicaLimit(undefined, { initial: 8, max: 1024 });
  for (let i = 0; i < 20; i++) l.sample(100, l.current);
  const grown = l.current;
  assert.ok(grown > 8, `grew to ${grown}`);
  for (let i = 0; i < 20; i++) l.sample(1000, l.current);
  assert.ok(l.current < grown, `shrank to ${l.current} from ${grown}`);
  const before = l.current;
  l.sample(100, 0);
  assert.ok(l.current <= before, 'an idle replica proves nothing: no growth');
  l.refused();
  assert.ok(l.current < before);
});

test('adaptive: one stall of the machine, or a slow answer sent below the limit, moves nothing; a queue at the server does not become the baseline, a server slower for good does', () => {
  const l = new ReplicaLimit(undefined, { initial: 8, max: 1024 });
  for (let i = 0; i < 4; i++) l.sample(100, 1);
  assert.equal(l.current, 8, 'not at its limit: no growth');
  l.sample(1000, 8);
  assert.equal(l.current, 8, 'one slow first token after fast ones is a stall, not a queue');
  for (let i = 0; i < 4; i++) l.sample(100, 8);
  for (let i = 0; i < 4; i++) l.sample(1000, 3);
  assert.ok(l.current >= 8, 'slow answers sent with 3 there say nothing about a limit of 8 or more');
  // Held at the limit and every answer waiting: down one per wait, and it stays down while the
  // queueing goes on (Gradient2's long average took the queued time for normal within a hundred).
  const start = l.current;
  for (let i = 0; i < 100; i++) l.sample(1000, l.current);
  assert.equal(l.current, 1, `from ${start} down to one, and kept there`);
  // Slower for good (nothing faster for two windows of samples): the slower time is adopted.
  for (let i = 0; i < 100; i++) l.sample(1000, l.current);
  assert.ok(l.current > 1, 'a server slower for good is taken as it is, and grows again');
});

test('affinity: the remembered replica first, else the ring; bounded load moves an image on when its replica has more than its share', () => {
  const mk = (base: string) => ({ base, outstanding: 0, limit: { current: 4 } });
  const ms = [mk('a'), mk('b'), mk('c')];
  const aff = new ImageAffinity(ms, 1.25, 100);
  const first = aff.pick('img', ms)!;
  assert.equal(first.hit, false);
  aff.record('img', first.member);
  assert.deepEqual(aff.pick('img', ms), { member: first.member, hit: true });
  first.member.outstanding = 2;
  const next = aff.pick('img', ms)!;
  assert.notEqual(next.member, first.member, 'over its bounded share, the image goes on round the ring');
  assert.equal(
    aff.pick(
      'img',
      ms.filter((m) => m !== next.member && m !== first.member),
    )!.member.base.length,
    1,
  );
  for (const m of ms) m.outstanding = 4;
  assert.equal(aff.pick('img', ms), undefined, 'every replica at its limit: routing by load decides');
});

test("affinity over several images: the whole list is the key, a shared first image does not pile requests onto one replica, an earlier turn's list still finds its replica", () => {
  const mk = (base: string) => ({ base, outstanding: 0, limit: { current: 64 } });
  const ms = [mk('a'), mk('b'), mk('c')];
  const aff = new ImageAffinity(ms, 1.25, 1000);
  const fp = (name: string) => createHash('sha256').update(name).digest('hex');
  assert.equal(imageAffinityKey([]), undefined);
  assert.equal(imageAffinityKey([fp('x')]), fp('x'), 'one image: its fingerprint, as before');
  assert.notEqual(imageAffinityKey([fp('x'), fp('y')]), imageAffinityKey([fp('y'), fp('x')]), 'order counts');
  const route = (key: string) => {
    const p = aff.pick(key, ms)!;
    aff.record(key, p.member);
    return p;
  };
  // Twenty documents that open with the same logo page: spread as twenty new lists, none a hit.
  const logo = fp('logo');
  const docs = Array.from({ length: 20 }, (_, i) => imageAffinityKey([logo, fp(`page ${i}`)])!);
  const homes = docs.map((k) => route(k));
  assert.equal(homes.filter((h) => h.hit).length, 0, 'a shared opening image is no hit');
  assert.equal(new Set(homes.map((h) => h.member.base)).size, 3, 'they spread over every replica');
  // Keyed on the first image, the same twenty would all have had one home.
  const firstOnly = new ImageAffinity(ms, 1.25, 1000);
  const firstHomes = docs.map(() => firstOnly.pick(logo, ms)!.member.base);
  assert.equal(new Set(firstHomes).size, 1);
  // Each document asked again goes back where it went.
  docs.forEach((k, i) => assert.deepEqual(route(k), { member: homes[i]!.member, hit: true }));
  // A conversation: turn 1 sends [A]; turn 3 adds B, and goes where [A] (and the conversation) is.
  const a = fp('A');
  const turn1 = route(imageAffinityKey([a])!);
  const turn3 = route(imageAffinityKey([a, fp('B')])!);
  assert.deepEqual(turn3, { member: turn1.member, hit: true });
  // Only whole lists are remembered: the logo alone was never sent, so [logo, new page] is a miss.
  assert.equal(route(imageAffinityKey([logo, fp('page 99')])!).hit, false);
});
