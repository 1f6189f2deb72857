import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { png, pngBomb } from './fixtures.js';

describe('bad images through the public API get a clear status and code before any generation', () => {
  let g: RunningGlimpse;
  let image: Buffer;
  before(async () => {
    image = await png(40, 30);
    g = await startGlimpse({ engine: 'simulated', simulated: { ttftMs: 0, tokensPerSecond: 10000, answerTokens: 2 }, images: { maxImagesPerRequest: 2, maxBase64Length: 20_000 } });
  });
  after(() => g.close());

  const chat = (urls: string[]) =>
    fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: [...urls.map((url) => ({ type: 'image_url', image_url: { url } })), { type: 'text', text: 'hi' }] }] }),
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
    await expectError(await chat([dataUrl(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))]), 415, 'unsupported_media_type');
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
