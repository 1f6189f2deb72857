import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { makeMp4 } from '../helpers/video.js';
import { sampleTimes } from '../../src/video/index.js';

/** Real videos made with Debian's ffmpeg from its test pattern. */
function makeVideos(dir: string) {
  const ff = (...args: string[]) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { stdio: 'ignore' });
  ff(
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=160x120:rate=10',
    '-t',
    '1',
    '-c:v',
    'libvpx',
    '-deadline',
    'realtime',
    join(dir, 'a.webm'),
  );
  ff('-f', 'lavfi', '-i', 'sine=duration=1', '-c:a', 'flac', join(dir, 'audio.mkv'));
  const mp4 = makeMp4(2, '320x240');
  return {
    mp4,
    webm: readFileSync(join(dir, 'a.webm')),
    audioOnly: readFileSync(join(dir, 'audio.mkv')),
    truncated: mp4.subarray(0, Math.floor(mp4.length * 0.4)),
  };
}

const dataUrl = (mime: string, b: Buffer) => `data:${mime};base64,${b.toString('base64')}`;

describe('video: frames sampled by GLM-4.6V rule with their timestamps, or the video kept for pools that serve it', () => {
  let dir: string;
  let v: ReturnType<typeof makeVideos>;
  let vllm: FakeVllm;
  let g: RunningGlimpse;
  let passthrough: RunningGlimpse;
  let strict: RunningGlimpse;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glimpse-video-test-'));
    v = makeVideos(dir);
    vllm = await startFakeVllm();
    g = await startGlimpse({ engine: 'upstream', upstream: vllm.url, upstreamModel: vllm.model });
    passthrough = await startGlimpse({
      engine: 'upstream',
      upstream: vllm.url,
      upstreamModel: vllm.model,
      video: { upstreamPassthrough: true },
    });
    strict = await startGlimpse({
      engine: 'upstream',
      upstream: vllm.url,
      upstreamModel: vllm.model,
      video: { maxDurationSeconds: 1.5, maxPixels: 100 * 100 },
    });
  });
  after(async () => {
    await g.close();
    await passthrough.close();
    await strict.close();
    await vllm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ask = (server: RunningGlimpse, url: string) =>
    fetch(server.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'video_url', video_url: { url } },
              { type: 'text', text: 'what happens?' },
            ],
          },
        ],
      }),
    });
  const sent = () =>
    vllm.requests.filter((r) => r.method === 'POST').at(-1)!.body.messages[0].content as Array<{
      type: string;
      text?: string;
      video_url?: { url: string };
    }>;

  test('the sampling rule: 3 fps to 30 s, 1 fps to 300 s, 0.5 fps after, capped', () => {
    assert.equal(sampleTimes(2, 64).length, 6);
    assert.equal(sampleTimes(60, 128).length, 60);
    assert.equal(sampleTimes(600, 1000).length, 300);
    assert.equal(sampleTimes(3600, 64).length, 64);
    const t = sampleTimes(10, 64);
    assert.ok(t[0] > 0 && t.at(-1)! < 10);
  });

  test('a 2 s MP4 becomes 6 frames, each after its timestamp', async () => {
    const res = await ask(g, dataUrl('video/mp4', v.mp4));
    assert.equal(res.status, 200, await res.text());
    const parts = sent();
    assert.equal(parts.filter((p) => p.type === 'image_url').length, 6);
    assert.deepEqual(
      parts.filter((p) => p.type === 'text').map((p) => p.text),
      [
        'Frame at 0:00.2',
        'Frame at 0:00.5',
        'Frame at 0:00.8',
        'Frame at 0:01.2',
        'Frame at 0:01.5',
        'Frame at 0:01.8',
        'what happens?',
      ],
    );
  });

  test('WebM is read too', async () => {
    const res = await ask(g, dataUrl('video/webm', v.webm));
    assert.equal(res.status, 200, await res.text());
    assert.equal(sent().filter((p) => p.type === 'image_url').length, 3);
  });

  test('a pool that serves video gets it whole as video_url', async () => {
    const res = await ask(passthrough, dataUrl('video/mp4', v.mp4));
    assert.equal(res.status, 200, await res.text());
    const video = sent().find((p) => p.type === 'video_url');
    assert.ok(video?.video_url?.url.startsWith('data:video/mp4;base64,'));
    assert.equal(Buffer.from(video!.video_url!.url.split(',')[1], 'base64').length, v.mp4.length);
  });

  test('limits from the header: too long, too large a frame', async () => {
    const long = await ask(strict, dataUrl('video/mp4', v.mp4));
    assert.equal(long.status, 422);
    assert.equal((await long.json()).error.code, 'video_too_long');
    const big = await ask(strict, dataUrl('video/webm', v.webm));
    assert.equal(big.status, 422);
    assert.equal((await big.json()).error.code, 'video_resolution_too_large');
  });

  const refusals: Array<[string, () => Buffer, string]> = [
    ['a truncated MP4', () => v.truncated, 'invalid_video'],
    ['a video with no video stream', () => v.audioOnly, 'invalid_video'],
    ['a "video" that is a text file', () => Buffer.from('this is not a video\n'.repeat(20)), 'invalid_video'],
  ];
  for (const [what, bytes, code] of refusals) {
    test(`${what} is refused with ${code}, and the next request is served`, async () => {
      const res = await ask(g, dataUrl('video/mp4', bytes()));
      assert.equal(res.status, 422);
      assert.equal((await res.json()).error.code, code);
      assert.equal((await ask(g, dataUrl('video/webm', v.webm))).status, 200);
    });
  }

  test('multipart /infer takes a video upload', async () => {
    const form = new FormData();
    form.append('prompt', 'what happens?');
    form.append('video', new Blob([v.webm], { type: 'video/webm' }), 'clip.webm');
    const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
    assert.equal(res.status, 200, await res.text());
    assert.equal(sent().filter((p) => p.type === 'image_url').length, 3);
  });
});
