import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { png, pngBomb, slowPng } from './fixtures.js';

describe('bad images through the public API get a clear status and code before any generation', () => {
  let g: RunningGlimpse;
  let image: Buffer;
  before(async () => {
    image = await png(40, 30);
    g = await startGlimpse({
      engine: 'simulated',
      simulated: { ttftMs: 0, tokensPerSecond: 10000, answerTokens: 2 },
      images: { maxImagesPerRequest: 2, maxBase64Length: 20_000 },
    });
  });
  after(() => g.close());

  const chat = (urls: string[]) =>
    fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          {
            role: 'user',
            content: [...urls.map((url) => ({ type: 'image_url', image_url: { url } })), { type: 'text', text: 'hi' }],
          },
        ],
      }),
    });
  const dataUrl = (b: Buffer) => `data:image/png;base64,${b.toString('base64')}`;
  const expectError = async (res: Response, status: number, code: string) => {
    const body = await res.json();
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(body.error.code, code);
    return body.error.message as string;
  };

  test('a decompression bomb answers 422 image_too_many_pixels naming the dimensions', async () => {
    const msg = await expectError(await chat([dataUrl(pngBomb(60000, 60000))]), 422, 'image_too_many_pixels');
    assert.match(msg, /60000x60000/);
  });

  test('three images when two are allowed answer 422 too_many_images', async () => {
    await expectError(await chat([dataUrl(image), dataUrl(image), dataUrl(image)]), 422, 'too_many_images');
    assert.equal((await chat([dataUrl(image), dataUrl(image)])).status, 200);
  });

  test('base64 longer than images.maxBase64Length answers 413 base64_too_long', async () => {
    const msg = await expectError(await chat(['data:image/png;base64,' + 'A'.repeat(20_004)]), 413, 'base64_too_long');
    assert.match(msg, /20004.*20000/);
  });

  test('text, SVG and a truncated PNG answer 422 invalid_image or 415 unsupported_media_type', async () => {
    await expectError(await chat([dataUrl(Buffer.from('just some text'))]), 422, 'invalid_image');
    await expectError(
      await chat([dataUrl(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))]),
      415,
      'unsupported_media_type',
    );
    await expectError(await chat([dataUrl(image.subarray(0, 60))]), 422, 'invalid_image');
  });

  test('an image URL pointing at loopback or cloud metadata answers 400 image_url_forbidden', async () => {
    const port = new URL(g.url).port;
    await expectError(await chat([`http://127.0.0.1:${port}/health`]), 400, 'image_url_forbidden');
    await expectError(await chat(['http://169.254.169.254/latest/meta-data/']), 400, 'image_url_forbidden');
    await expectError(await chat([`http://[::ffff:127.0.0.1]:${port}/health`]), 400, 'image_url_forbidden');
  });

  test('/infer keeps its own error shape for a broken upload', async () => {
    const form = new FormData();
    form.append('image', new Blob([Buffer.from('GIF89a broken')]), 'x.gif');
    form.append('prompt', 'what?');
    const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
    const body = await res.json();
    assert.equal(res.status, 422);
    assert.equal(body.error_code, 'invalid_image');
    assert.match(body.msg, /GIF/);
  });
});

describe('an image slower to decode than images.decodeTimeoutSeconds', () => {
  let g: RunningGlimpse;
  let slow: Buffer;
  before(async () => {
    slow = await slowPng(14000);
    // One decode at a time, so the next request can only be served once the stopped decode has let go of its slot.
    g = await startGlimpse({
      engine: 'simulated',
      simulated: { ttftMs: 0, tokensPerSecond: 10000, answerTokens: 2 },
      images: { maxPixels: 200_000_000, decodeTimeoutSeconds: 1, maxConcurrentDecodes: 1 },
    });
  });
  after(() => g.close());

  const chat = (image: Buffer) =>
    fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: `data:image/png;base64,${image.toString('base64')}` } },
              { type: 'text', text: 'hi' },
            ],
          },
        ],
      }),
    });

  test('answers 422 image_decode_timeout naming the setting, and the decode slot is free for the next image', async () => {
    const res = await chat(slow);
    const body = await res.json();
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.equal(body.error.code, 'image_decode_timeout');
    assert.match(body.error.message, /images\.decodeTimeoutSeconds\) of 1 s/);
    const metrics = await (await fetch(g.url + '/metrics')).text();
    assert.match(metrics, /^glimpse_images_refused_total\{code="image_decode_timeout"\} [1-9]/m);
    const next = await chat(await png(64, 48));
    assert.equal(next.status, 200, await next.text());
  });
});
