/**
 * Routing in a pool: by load (outstanding over each replica's limit) and by image (the replica
 * that saw an image gets it again, within a bounded load); and model discovery: without
 * --upstream-model the servers' own /v1/models names are served and routed by.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { waitFor } from '../helpers/wait.js';
import { sample } from '../helpers/metrics.js';
import { burst, chatBody, colourPng, members, postChat } from '../helpers/pool.js';

async function pool(
  t: import('node:test').TestContext,
  fakes: FakeVllm[],
  flags: Record<string, unknown> = {},
): Promise<RunningGlimpse> {
  const g = await startGlimpse({
    engine: 'upstream',
    upstream: fakes.map((f) => f.url),
    upstreamHealthInterval: 0,
    maxQueue: 256,
    ...flags,
  });
  t.after(async () => {
    await g.close();
    await Promise.all(fakes.map((f) => f.close()));
  });
  return g;
}

const chats = (f: FakeVllm) => f.requests.filter((r) => r.method === 'POST');
/** The image a chat request sent upstream carried (its data URL). */
const imageOf = (body: any): string =>
  body.messages.at(-1).content.find((p: { type: string }) => p.type === 'image_url').image_url.url;
// Slow enough that concurrent requests overlap for a while even on a loaded machine.
const slow = () => ({ reasoning: [], content: ['a', 'b', 'c', 'd'], delayMs: 100 });

test('an image seen recently goes back to the replica that saw it; affinity hits are counted in /health and /metrics', async (t) => {
  const fakes = await Promise.all([0, 1, 2].map(() => startFakeVllm()));
  const g = await pool(t, fakes, { upstreamModel: fakes[0]!.model });
  const images = await Promise.all([
    colourPng(200, 0, 0),
    colourPng(0, 200, 0),
    colourPng(0, 0, 200),
    colourPng(90, 90, 90),
  ]);
  // One at a time, so load never forces a request elsewhere: each image's three requests meet one replica.
  for (let round = 0; round < 3; round++) {
    for (const image of images) assert.equal((await postChat(g, chatBody({ image }))).status, 200);
  }
  const homes = new Map<string, Set<number>>();
  fakes.forEach((f, i) =>
    chats(f).forEach((r) => homes.set(imageOf(r.body), (homes.get(imageOf(r.body)) ?? new Set()).add(i))),
  );
  assert.equal(homes.size, 4);
  for (const where of homes.values()) assert.equal(where.size, 1, 'every request of an image reached the same replica');
  const view = await members(g);
  assert.equal(
    view.reduce((n, m) => n + m.affinityHits, 0),
    8,
    'the second and third request of each image were affinity hits',
  );
  const metrics = await (await fetch(g.url + '/metrics')).text();
  const hits = fakes.reduce(
    (n, f) => n + (sample(metrics, 'glimpse_upstream_affinity_hits_total', { upstream: f.url }) ?? 0),
    0,
  );
  const routed = fakes.reduce(
    (n, f) => n + (sample(metrics, 'glimpse_upstream_routed_total', { upstream: f.url }) ?? 0),
    0,
  );
  assert.deepEqual([hits, routed], [8, 12]);
});

test('several images per request: keyed on all of them, so documents opening with the same logo spread over the pool and each one asked again goes back to its replica', async (t) => {
  const fakes = await Promise.all([0, 1, 2].map(() => startFakeVllm()));
  const g = await pool(t, fakes, { upstreamModel: fakes[0]!.model });
  const logo = await colourPng(250, 250, 250);
  const pages = await Promise.all(Array.from({ length: 10 }, (_, i) => colourPng(i * 20, 100, 50)));
  const body = (page: string) => ({
    ...chatBody(),
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: logo } },
          { type: 'image_url', image_url: { url: page } },
          { type: 'text', text: 'What does this page say?' },
        ],
      },
    ],
  });
  // One at a time, so load never moves a request: where each goes is the key's doing alone.
  for (let round = 0; round < 2; round++)
    for (const page of pages) assert.equal((await postChat(g, body(page))).status, 200);
  const pageOf = (b: any): string =>
    b.messages.at(-1).content.filter((p: any) => p.type === 'image_url')[1].image_url.url;
  const homes = new Map<string, Set<number>>();
  fakes.forEach((f, i) =>
    chats(f).forEach((r) => homes.set(pageOf(r.body), (homes.get(pageOf(r.body)) ?? new Set()).add(i))),
  );
  assert.equal(homes.size, 10);
  for (const where of homes.values()) assert.equal(where.size, 1, 'both requests of a document met one replica');
  // Ten lists on a ring of three: all on one replica would be what keying on the logo does.
  assert.ok(fakes.filter((f) => chats(f).length > 0).length >= 2, 'the documents spread over the pool');
  assert.equal(
    (await members(g)).reduce((n, m) => n + m.affinityHits, 0),
    10,
    'the second asking of each document was a hit, the first (sharing only the logo) none',
  );
});

test('one hot image cannot pin one GPU: a burst of it spreads over the pool within the bounded load, no replica beyond its limit', async (t) => {
  // Each replica runs 4 at once and would queue a fifth: its own queue staying empty shows glimpse never sent it more.
  const fakes = await Promise.all(
    [0, 1, 2].map(() =>
      startFakeVllm({ script: () => ({ reasoning: [], content: ['a', 'b', 'c', 'd'], delayMs: 150 }), maxSeqs: 4 }),
    ),
  );
  const g = await pool(t, fakes, { upstream: fakes.map((f) => `${f.url}#max=4`), upstreamModel: fakes[0]!.model });
  const image = await colourPng(10, 20, 30);
  assert.deepEqual(new Set(await burst(g, 12, () => chatBody({ image }))), new Set([200]));
  const used = fakes.filter((f) => chats(f).length > 0).length;
  assert.ok(used >= 2, `the hot image was spread over ${used} replicas`);
  assert.deepEqual(
    fakes.map((f) => f.peakWaiting()),
    [0, 0, 0],
    'no replica was sent beyond its limit',
  );
});

test('without images, requests go to the least loaded replica by its limit: #max=1 and #max=3 take 1 and 3 of 4', async (t) => {
  const [a, b] = await Promise.all([startFakeVllm({ script: slow }), startFakeVllm({ script: slow })]);
  const g = await pool(t, [a!, b!], { upstream: [`${a!.url}#max=1`, `${b!.url}#max=3`], upstreamModel: a!.model });
  const done = burst(g, 4, () => chatBody());
  await waitFor(() => a!.running() + b!.running() === 4, 'all four running');
  assert.deepEqual([a!.running(), b!.running()], [1, 3]);
  assert.deepEqual(await done, [200, 200, 200, 200]);
});

test('without --upstream-model the models the servers list are served: /v1/models names them, a client naming one is answered, each goes only to servers that serve it', async (t) => {
  const a = await startFakeVllm();
  const b = await startFakeVllm({ model: 'other-vlm' });
  const g = await pool(t, [a, b]);
  const listed = ((await (await fetch(g.url + '/v1/models')).json()) as { data: Array<{ id: string }> }).data.map(
    (m) => m.id,
  );
  assert.deepEqual(listed, [a.model, 'other-vlm']);
  for (let i = 0; i < 3; i++) assert.equal((await postChat(g, chatBody({ model: a.model }))).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await postChat(g, chatBody({ model: 'other-vlm' }))).status, 200);
  // No model named: the first one served.
  assert.equal((await postChat(g, chatBody())).status, 200);
  assert.deepEqual(
    chats(a).map((r) => r.body.model),
    [a.model, a.model, a.model, a.model],
  );
  assert.deepEqual(
    chats(b).map((r) => r.body.model),
    ['other-vlm', 'other-vlm'],
  );
  assert.equal((await postChat(g, chatBody({ model: 'gpt-4o' }))).status, 404);
  assert.deepEqual(
    (await members(g)).map((m) => m.models),
    [[a.model], ['other-vlm']],
  );
});

test('--upstream-model still pins the name; a replica serving another model is named in /health, left out of the capacity and not used', async (t) => {
  const a = await startFakeVllm();
  const b = await startFakeVllm({ model: 'other-vlm' });
  const g = await pool(t, [a, b], { upstreamModel: a.model, upstream: [`${a.url}#max=2`, `${b.url}#max=5`] });
  const view = await members(g);
  assert.equal(view[0]!.note, undefined);
  assert.match(view[1]!.note ?? '', /serves other-vlm, not zai-org\/GLM-4\.6V-Flash: not used for it/);
  assert.equal(g.pipeline.stats().maxInFlight, 2);
  assert.deepEqual(new Set(await burst(g, 4, () => chatBody())), new Set([200]));
  assert.deepEqual([chats(a).length, chats(b).length], [4, 0]);
  assert.deepEqual(
    ((await (await fetch(g.url + '/v1/models')).json()) as { data: Array<{ id: string }> }).data.map((m) => m.id),
    [a.model],
  );
});

test("with --upstream-routes each model has its own capacity: one model's full pool queues its own requests, not another model's", async (t) => {
  const flash = await startFakeVllm({
    script: () => ({ reasoning: [], content: ['a', 'b', 'c', 'd', 'e', 'f'], delayMs: 60 }),
  });
  const big = await startFakeVllm({ model: 'glm-4.6v' });
  const g = await pool(t, [flash, big], {
    upstream: [`${flash.url}#max=1`],
    upstreamModel: flash.model,
    upstreamRoutes: { 'glm-4.6v': `${big.url}#max=1` },
  });
  const busy = burst(g, 3, () => chatBody({ model: flash.model }));
  await waitFor(
    () => flash.running() === 1 && g.pipeline.stats().queued === 2,
    'the flash pool full, two of its requests queued',
  );
  // The other model's pool has room: answered while the flash requests still wait.
  assert.equal((await postChat(g, chatBody({ model: 'glm-4.6v' }))).status, 200);
  assert.equal(g.pipeline.stats().queued, 2, 'the flash requests are still waiting');
  assert.deepEqual(await busy, [200, 200, 200]);
});

test("with every primary replica down, the capacity is the fallback pool's, which takes the traffic", async (t) => {
  const backup = await startFakeVllm({ model: 'backup-vlm', script: slow });
  const g = await pool(t, [backup], {
    upstream: ['http://127.0.0.1:9/v1'],
    upstreamModel: 'zai-org/GLM-4.6V-Flash',
    fallbackUpstream: [`${backup.url}#max=3`],
    fallbackUpstreamModel: 'backup-vlm',
    upstreamRetryBackoffMs: 1,
    upstreamConnectTimeout: 1,
  });
  assert.equal((await members(g))[0]!.state, 'down');
  assert.equal(g.pipeline.stats().maxInFlight, 3);
  const done = burst(g, 3, () => chatBody());
  await waitFor(() => backup.running() === 3, 'three running at the fallback pool at once');
  assert.deepEqual(await done, [200, 200, 200]);
});
