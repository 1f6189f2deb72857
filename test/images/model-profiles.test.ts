import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { jpeg } from './fixtures.js';

describe('model profiles: images.maxEdgeByModel sizes the images each model gets', () => {
  let vllm: FakeVllm;
  let otherVllm: FakeVllm;
  let g: RunningGlimpse;
  let other: RunningGlimpse;
  let photo: string;
  before(async () => {
    photo = `data:image/jpeg;base64,${(await jpeg(1600, 1200)).toString('base64')}`;
    vllm = await startFakeVllm();
    otherVllm = await startFakeVllm({ model: 'unprofiled-vlm' });
    // One profile table for the fleet: the instance serving the profiled model sizes to 448, one serving another model to the 800 default.
    const images = { maxEdge: 800, maxEdgeByModel: { [vllm.model]: 448, 'some-other-vlm': 1280 } };
    g = await startGlimpse({ engine: 'upstream', upstream: vllm.url, upstreamModel: vllm.model, images });
    other = await startGlimpse({ engine: 'upstream', upstream: otherVllm.url, upstreamModel: otherVllm.model, images });
  });
  after(async () => {
    await g.close();
    await other.close();
    await vllm.close();
    await otherVllm.close();
  });

  /** Dimensions of the image glimpse sent to this upstream in its latest request. */
  async function sentSize(upstream: FakeVllm): Promise<[number, number]> {
    const body = upstream.requests.filter((r) => r.method === 'POST').at(-1)!.body;
    const url: string = body.messages[0].content.find((p: { type: string }) => p.type === 'image_url').image_url.url;
    const meta = await sharp(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64')).metadata();
    return [meta.width!, meta.height!];
  }

  const ask = (server: RunningGlimpse, model: string) =>
    fetch(server.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: photo } },
              { type: 'text', text: 'what is this?' },
            ],
          },
        ],
      }),
    });

  test('the profiled model gets its own bound, a model without a profile the default', async () => {
    const a = await ask(g, vllm.model);
    assert.equal(a.status, 200, await a.text());
    assert.deepEqual(await sentSize(vllm), [448, 336]);
    const b = await ask(other, 'unprofiled-vlm');
    assert.equal(b.status, 200, await b.text());
    assert.deepEqual(await sentSize(otherVllm), [800, 600]);
  });

  test("the page is told the default model's bound, so it shrinks uploads to the same size", async () => {
    assert.equal((await (await fetch(g.url + '/ui/config.json')).json()).imageMaxEdge, 448);
    assert.equal((await (await fetch(other.url + '/ui/config.json')).json()).imageMaxEdge, 800);
  });
});
