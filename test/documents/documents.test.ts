import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { makePdf, manyPagesPdf } from '../helpers/documents.js';

const pdfUrl = (pdf: Buffer) => `data:application/pdf;base64,${pdf.toString('base64')}`;

describe('documents: PDFs become their pages, in order, each after a Page N of M marker', () => {
  let vllm: FakeVllm;
  let g: RunningGlimpse;
  let simulated: RunningGlimpse;
  before(async () => {
    vllm = await startFakeVllm();
    g = await startGlimpse({ engine: 'upstream', upstream: vllm.url, upstreamModel: vllm.model });
    simulated = await startGlimpse({ engine: 'simulated' });
  });
  after(async () => {
    await g.close();
    await simulated.close();
    await vllm.close();
  });

  const chat = (server: RunningGlimpse, part: unknown) =>
    fetch(server.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: [part, { type: 'text', text: 'summarize' }] }] }),
    });

  /** The content parts glimpse sent upstream in its latest request. */
  const sent = () =>
    vllm.requests.filter((r) => r.method === 'POST').at(-1)!.body.messages[0].content as Array<{
      type: string;
      text?: string;
      image_url?: { url: string };
    }>;

  async function sizeOf(url: string): Promise<[number, number]> {
    const meta = await sharp(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64')).metadata();
    return [meta.width, meta.height];
  }

  test("OpenAI's file part: three pages, each a marker then an image sized in 28 px units", async () => {
    const res = await chat(g, {
      type: 'file',
      file: { filename: 'report.pdf', file_data: pdfUrl(makePdf({ pages: 3 })) },
    });
    assert.equal(res.status, 200, await res.text());
    const parts = sent();
    assert.deepEqual(
      parts.map((p) => p.type),
      ['text', 'image_url', 'text', 'image_url', 'text', 'image_url', 'text'],
    );
    assert.deepEqual(
      [parts[0].text, parts[2].text, parts[4].text, parts[6].text],
      ['Page 1 of 3', 'Page 2 of 3', 'Page 3 of 3', 'summarize'],
    );
    const [w, h] = await sizeOf(parts[1].image_url!.url);
    assert.equal(w % 28, 0);
    assert.equal(h % 28, 0);
    assert.ok(w * h <= g.config.documents.maxPagePixels, `${w}x${h}`);
    // Portrait letter paper stays portrait.
    assert.ok(h > w);
  });

  test("Zhipu's file_url part, and the shared budget: 60 pages get fewer pixels each than 3", async () => {
    const res = await chat(g, { type: 'file_url', file_url: { url: pdfUrl(makePdf({ pages: 60 })) } });
    assert.equal(res.status, 200, await res.text());
    const images = sent().filter((p) => p.type === 'image_url');
    assert.equal(images.length, 60);
    assert.equal(sent()[118].text, 'Page 60 of 60');
    const [w, h] = await sizeOf(images[0].image_url!.url);
    assert.ok(w * h * 60 <= g.config.documents.totalPixels, `60 pages at ${w}x${h} exceed the budget`);
    assert.ok(w * h < g.config.documents.maxPagePixels / 2);
  });

  test('multipart /infer takes a PDF upload', async () => {
    const form = new FormData();
    form.append('prompt', 'what does it say?');
    form.append('file', new Blob([makePdf({ pages: 2 })], { type: 'application/pdf' }), 'two.pdf');
    const res = await fetch(g.url + '/infer', { method: 'POST', body: form });
    assert.equal(res.status, 200, await res.text());
    assert.deepEqual(
      sent()
        .filter((p) => p.type === 'text')
        .map((p) => p.text),
      ['Page 1 of 2', 'Page 2 of 2', 'what does it say?'],
    );
  });

  test('the engine that takes pixels gets the pages too', async () => {
    const res = await chat(simulated, { type: 'file', file: { file_data: pdfUrl(makePdf({ pages: 2 })) } });
    assert.equal(res.status, 200, await res.text());
  });

  const refusals: Array<[string, () => Buffer, number, string]> = [
    [
      'a broken PDF',
      () => Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >>\ntrailer garbage'),
      422,
      'invalid_document',
    ],
    ['an encrypted PDF', () => makePdf({ password: 'secret' }), 422, 'document_encrypted'],
    ['a PDF of 10,000 pages', () => manyPagesPdf(10_000), 422, 'too_many_pages'],
    ['a page 200 inches square', () => makePdf({ width: 14_400, height: 14_400 }), 422, 'document_page_too_large'],
    ['a text file', () => Buffer.from('just some text, not a document\n'.repeat(10)), 422, 'invalid_document'],
  ];
  for (const [what, bytes, status, code] of refusals) {
    test(`${what} is refused with ${code}, and the next request is served`, async () => {
      const res = await chat(g, {
        type: 'file',
        file: { file_data: `data:application/pdf;base64,${bytes().toString('base64')}` },
      });
      assert.equal(res.status, status);
      assert.equal((await res.json()).error.code, code);
      const next = await chat(g, { type: 'file', file: { file_data: pdfUrl(makePdf()) } });
      assert.equal(next.status, 200);
    });
  }

  test("image budgets: detail 'low' is one 512 px view, and usage counts image tokens", async () => {
    const photo = await sharp({ create: { width: 1600, height: 900, channels: 3, background: '#3366cc' } })
      .jpeg()
      .toBuffer();
    const url = `data:image/jpeg;base64,${photo.toString('base64')}`;
    const low = await chat(g, { type: 'image_url', image_url: { url, detail: 'low' } });
    assert.equal(low.status, 200, await low.text());
    assert.deepEqual(await sizeOf(sent()[0].image_url!.url), [512, 288]);
    const res = await chat(g, { type: 'file', file: { file_data: pdfUrl(makePdf({ pages: 2 })) } });
    const usage = (await res.json()).usage;
    const [w, h] = await sizeOf(sent()[1].image_url!.url);
    // The upstream did not say; the estimate is one token per 28x28 cell of each page.
    assert.equal(usage.prompt_tokens_details.image_tokens, 2 * (w / 28) * (h / 28));
  });

  test("the Responses API's input_file part", async () => {
    const res = await fetch(g.url + '/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_file', filename: 'a.pdf', file_data: pdfUrl(makePdf({ pages: 2 })) },
              { type: 'input_text', text: 'summarize' },
            ],
          },
        ],
      }),
    });
    assert.equal(res.status, 200, await res.text());
    assert.deepEqual(
      sent().map((p) => p.text ?? p.type),
      ['Page 1 of 2', 'image_url', 'Page 2 of 2', 'image_url', 'summarize'],
    );
  });

  test('file_id is refused with a clear message (there is no file store)', async () => {
    const res = await chat(g, { type: 'file', file: { file_id: 'file-abc' } });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /file_data/);
  });

  test('documents only from users', async () => {
    const res = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { role: 'system', content: [{ type: 'file', file: { file_data: pdfUrl(makePdf()) } }] },
          { role: 'user', content: 'hi' },
        ],
      }),
    });
    assert.equal(res.status, 400);
  });
});
