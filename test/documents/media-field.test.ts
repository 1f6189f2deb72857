/**
 * `glimpse_media` on Chat Completions answers: what glimpse made of each document and video (pages
 * or frames, their size after the budget, a video's sampling rate), taken from what the model was
 * actually given, with small views of each when the request says glimpse_thumbnails. Through a real
 * glimpse on the simulated engine, which gets the rendered pages and frames as every engine does.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { makePdf } from '../helpers/documents.js';
import { makeMp4 } from '../helpers/video.js';
import type { MediaOut } from '../../src/protocols/media.js';

type Media = MediaOut;

describe('glimpse_media', () => {
  let g: RunningGlimpse;
  let pdf: string;
  let mp4: string;
  before(async () => {
    g = await startGlimpse({ engine: 'simulated', simulated: { ttftMs: 1, tokensPerSecond: 2000, answerTokens: 4 } });
    pdf = `data:application/pdf;base64,${makePdf({ pages: 3 }).toString('base64')}`;
    mp4 = `data:video/mp4;base64,${makeMp4(2).toString('base64')}`;
  });
  after(() => g?.close());

  const chat = (content: unknown[], extras: Record<string, unknown> = {}) =>
    fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: 8, ...extras }),
    });

  test('a PDF: its page count and the size its pages were rendered at; image tokens agree', async () => {
    const res = await chat([
      { type: 'text', text: 'summarize' },
      { type: 'file', file: { file_data: pdf, filename: 'report.pdf' } },
    ]);
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      glimpse_media: Media[];
      usage: { prompt_tokens_details: { image_tokens: number } };
    };
    assert.equal(body.glimpse_media.length, 1);
    const d = body.glimpse_media[0];
    assert.deepEqual([d.type, d.filename, d.image, d.pages], ['document', 'report.pdf', 0, 3]);
    assert.equal('thumbnails' in d, false, 'views only when asked');
    assert.ok(d.width % 28 === 0 && d.height % 28 === 0 && d.height > d.width, `${d.width}x${d.height}`);
    // The numbers are those of the pages the model read: usage counts their 28 px cells.
    assert.equal(body.usage.prompt_tokens_details.image_tokens, 3 * (d.width / 28) * (d.height / 28));
  });

  test('glimpse_thumbnails adds one small JPEG per page, in order', async () => {
    const res = await chat(
      [
        { type: 'file', file: { file_data: pdf } },
        { type: 'text', text: 'summarize' },
      ],
      {
        glimpse_thumbnails: true,
      },
    );
    const d = ((await res.json()) as { glimpse_media: Media[] }).glimpse_media[0];
    assert.equal(d.thumbnails?.length, 3);
    for (const t of d.thumbnails ?? []) {
      assert.match(t, /^data:image\/jpeg;base64,/);
      const meta = await sharp(Buffer.from(t.split(',')[1], 'base64')).metadata();
      assert.ok(Math.max(meta.width, meta.height) <= 160, `${meta.width}x${meta.height}`);
      assert.ok(Math.abs(meta.width / meta.height - d.width / d.height) < 0.05, 'the page shape kept');
    }
  });

  test('a video, streamed: the role chunk says how many frames at what rate; an image after it counts on', async () => {
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888' } })
      .png()
      .toBuffer();
    const res = await chat(
      [
        { type: 'video_url', video_url: { url: mp4 } },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
        { type: 'file', file: { file_data: pdf, filename: 'b.pdf' } },
        { type: 'text', text: 'what happens?' },
      ],
      { stream: true, glimpse_thumbnails: true },
    );
    assert.equal(res.status, 200);
    const chunks = (await res.text())
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)) as { glimpse_media?: Media[]; choices: Array<{ delta: { role?: string } }> });
    const withMedia = chunks.filter((c) => c.glimpse_media);
    assert.equal(withMedia.length, 1);
    assert.equal(withMedia[0], chunks[0]);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const [video, doc] = withMedia[0].glimpse_media!;
    // 2 s of video at GLM-4.6V's 3 frames a second under 30 s.
    assert.deepEqual([video.type, video.image, video.frames, video.fps, video.duration_seconds], ['video', 0, 6, 3, 2]);
    assert.equal(video.thumbnails?.length, 6);
    assert.ok(video.width % 28 === 0 && video.width > video.height);
    // Six frames, then the image, then the document's pages.
    assert.deepEqual([doc.type, doc.filename, doc.image, doc.pages], ['document', 'b.pdf', 7, 3]);
  });

  test('no document or video, no field', async () => {
    const res = await chat([{ type: 'text', text: 'hello' }]);
    assert.equal('glimpse_media' in ((await res.json()) as object), false);
  });
});
