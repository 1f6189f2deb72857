/**
 * The adaptive limit against servers that expose no load gauges, through a real glimpse started
 * with nothing but the server's URL: an Ollama double that runs OLLAMA_NUM_PARALLEL requests at
 * once and queues the rest inside itself (time to first token growing with that queue), and one
 * that refuses (503 as Ollama past OLLAMA_MAX_QUEUE, 429 as rate-limited APIs) when full. More
 * clients than the server runs ask in a closed loop; what is read is glimpse's own /metrics and
 * /health, and the double's time-weighted queue. Bounded by answers, not time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeOllama, type FakeOllama, type FakeOllamaOptions } from '../helpers/fake-ollama.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { sample } from '../helpers/metrics.js';
import { chatBody, members, postChat } from '../helpers/pool.js';

async function ollamaBehindGlimpse(
  t: import('node:test').TestContext,
  opts: FakeOllamaOptions,
): Promise<{ f: FakeOllama; g: RunningGlimpse }> {
  // Prompt evaluation long enough that a wait in its queue stands out from a loaded machine's
  // jitter, and answers several times longer, as a vision model's are.
  const f = await startFakeOllama({
    prefillMs: 80,
    tokenMs: 15,
    tokens: Array.from({ length: 16 }, (_, i) => `w${i} `),
    ...opts,
  });
  // Defaults: just the URL (no model, no limit, no intervals).
  const g = await startGlimpse({ engine: 'upstream', upstream: [f.url] });
  t.after(async () => {
    await g.close();
    await f.close();
  });
  return { f, g };
}

/**
 * `clients` clients asking again as soon as answered until `answers` have come back; `onAnswer`
 * sees the running count. Returns the statuses.
 */
async function closedLoop(
  g: RunningGlimpse,
  clients: number,
  answers: number,
  onAnswer: (n: number) => void = () => {},
  stream = true,
): Promise<number[]> {
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (statuses.length < answers) {
        const res = await postChat(g, chatBody({ stream }));
        await res.arrayBuffer();
        statuses.push(res.status);
        onAnswer(statuses.length);
      }
    }),
  );
  return statuses;
}

/** The limit glimpse's /metrics shows for a replica (its per-replica gauge, any source). */
async function limitGauge(g: RunningGlimpse, upstream: string): Promise<number | undefined> {
  return sample(await (await fetch(g.url + '/metrics')).text(), 'glimpse_upstream_limit', { upstream });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// K below the initial limit (8): the limit must come down; K above it: it must grow.
for (const parallel of [3, 12]) {
  test(`against Ollama with OLLAMA_NUM_PARALLEL=${parallel} and more clients than that, the adaptive limit settles near ${parallel} and the excess waits in glimpse, not in Ollama's queue`, async (t) => {
    const { f, g } = await ollamaBehindGlimpse(t, { parallel });
    const clients = parallel + 6;
    const warmUp = 60;
    const measured = 90;
    const limits: number[] = [];
    let reading: Promise<void> = Promise.resolve();
    // Not streamed to the clients (glimpse streams from Ollama either way): less work on a shared machine.
    const statuses = await closedLoop(g, clients, warmUp + measured, (n) => {
      if (n === warmUp) f.resetMeanQueued();
      // After the warm-up, the limit as /metrics shows it, read once per few answers.
      if (n > warmUp && n % 3 === 0)
        reading = reading.then(async () => void limits.push((await limitGauge(g, f.url))!));
    });
    await reading;
    const queued = f.meanQueued();
    assert.deepEqual(new Set(statuses), new Set([200]), 'every request answered');
    const [m] = await members(g);
    assert.equal(m!.limitSource, 'adaptive', 'nothing on /metrics to learn from');
    const [low, high] = [parallel - 1, 2 * parallel];
    const settled = median(limits);
    assert.ok(
      settled >= low && settled <= high,
      `limit settled at ${settled} (readings ${limits.join(',')}), not within [${low}, ${high}]`,
    );
    const within = limits.filter((l) => l >= low && l <= high).length;
    assert.ok(within >= 0.75 * limits.length, `${within} of ${limits.length} readings within [${low}, ${high}]`);
    // Without a limit, the clients beyond what runs (6) would all wait inside Ollama.
    assert.ok(queued <= 3, `Ollama's own queue held ${queued.toFixed(2)} on average once settled`);
    assert.ok(f.peakRunning() <= parallel);
  });
}

for (const refuseStatus of [503, 429] as const) {
  test(`a server that answers ${refuseStatus} when it is full: the adaptive limit backs off to near what it runs, and the clients are still answered`, async (t) => {
    const parallel = 3;
    const { f, g } = await ollamaBehindGlimpse(t, { parallel, maxQueue: 0, refuseStatus });
    // Not streamed, so a request whose every attempt was refused shows as its status.
    const statuses = await closedLoop(g, 12, 100, undefined, false);
    const [m] = await members(g);
    assert.ok(m!.limit < 8, `the limit came down from its initial 8 (now ${m!.limit})`);
    assert.ok(m!.limit <= 2 * parallel, `limit ${m!.limit} near the ${parallel} it runs`);
    // Held at 8 (#max=8), the same load is refused about four times per answer and half the
    // clients get an error after their retries; backing off keeps refusals to the probing AIMD does.
    const answered = statuses.filter((s) => s === 200).length;
    assert.ok(answered >= 0.8 * statuses.length, `${answered} of ${statuses.length} answered`);
    assert.ok(f.refused() > 0, 'the server did refuse while the limit was learned');
    assert.ok(f.refused() < f.completed(), `${f.refused()} refusals for ${f.completed()} answers`);
  });
}
