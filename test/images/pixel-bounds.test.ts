/**
 * min_pixels / max_pixels as request extras (Qwen2-VL / GLM-V style), through a real glimpse in
 * front of the vLLM double: the size each image is sent upstream at, snapped to the 28 px grid and
 * clamped to the server's bound (images.maxEdge 1024), the image tokens usage reports for it, an
 * image part's own pair over the request's, and bad values refused in each dialect's error shape.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { upstreamSuite } from '../helpers/upstream-suite.js';

describe('min_pixels / max_pixels', () => {
  const suite = upstreamSuite({ before, after }, { cache: { enabled: false } });
  let wide: string; // 1600x900: shrunk to 1024x576 by the server's bound alone
  let small: string; // 100x50
  before(async () => {
    const jpeg = (width: number, height: number) =>
      sharp({ create: { width, height, channels: 3, background: '#3366cc' } })
        .jpeg()
        .toBuffer();
    wide = `data:image/jpeg;base64,${(await jpeg(1600, 900)).toString('base64')}`;
    small = `data:image/jpeg;base64,${(await jpeg(100, 50)).toString('base64')}`;
  });

  const post = (path: string, body: Record<string, unknown>) => {
    suite.script = { reasoning: [], content: ['ok'] };
    return fetch(suite.glimpse.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(body),
    });
  };
  const chat = (image: Record<string, unknown>, extras: Record<string, unknown> = {}) =>
    post('/v1/chat/completions', {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: image },
            { type: 'text', text: 'what?' },
          ],
        },
      ],
      ...extras,
    });
  /** The size of the image glimpse sent upstream in its latest request. */
  async function sentSize(): Promise<[number, number]> {
    const body = suite.vllm.lastChatBody() as { messages: Array<{ content: Array<{ image_url?: { url: string } }> }> };
    const url = body.messages[0].content.find((p) => p.image_url)!.image_url!.url;
    const meta = await sharp(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64')).metadata();
    return [meta.width, meta.height];
  }
  async function imageTokens(res: Response): Promise<number> {
    assert.equal(res.status, 200);
    const body = (await res.json()) as { usage: { prompt_tokens_details: { image_tokens: number } } };
    return body.usage.prompt_tokens_details.image_tokens;
  }

  test('max_pixels shrinks below the server bound, on the 28 px grid; usage counts its cells', async () => {
    const tokens = await imageTokens(await chat({ url: wide }, { max_pixels: 200_000 }));
    // 1024x576 scaled to 200,000 px is 596x335, each side down to 28s: 588x308, 21x11 cells.
    assert.deepEqual(await sentSize(), [588, 308]);
    assert.equal(tokens, 21 * 11);
    // Without the bound the same image costs more.
    assert.ok((await imageTokens(await chat({ url: wide }))) > tokens);
  });

  test('min_pixels enlarges a small image, at least that many pixels', async () => {
    const tokens = await imageTokens(await chat({ url: small }, { min_pixels: 200_000 }));
    const [w, h] = await sentSize();
    assert.deepEqual([w, h], [616, 336]);
    assert.ok(w * h >= 200_000);
    assert.equal(tokens, (616 / 28) * (336 / 28));
  });

  test("bounds past the server's are clamped to it, not refused", async () => {
    await imageTokens(await chat({ url: wide }, { max_pixels: 100_000_000 }));
    assert.deepEqual(await sentSize(), [1008, 560]); // 1024x576, on the grid
    await imageTokens(await chat({ url: small }, { min_pixels: 1_000_000_000, max_pixels: 2_000_000_000 }));
    const [w, h] = await sentSize();
    assert.ok(Math.max(w, h) <= 1024, `${w}x${h} stays inside images.maxEdge`);
    assert.deepEqual([w, h], [1008, 504]);
  });

  test("an image part's own pair replaces the request's", async () => {
    await imageTokens(await chat({ url: wide, max_pixels: 50_000 }, { max_pixels: 200_000 }));
    const [w, h] = await sentSize();
    assert.ok(w * h <= 50_000 && w % 28 === 0 && h % 28 === 0, `${w}x${h}`);
  });

  test('the Responses API and Anthropic Messages take the same extras', async () => {
    const responses = await post('/v1/responses', {
      max_pixels: 200_000,
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_image', image_url: wide },
            { type: 'input_text', text: 'what?' },
          ],
        },
      ],
    });
    assert.equal(responses.status, 200);
    assert.deepEqual(await sentSize(), [588, 308]);
    const anthropic = await post('/v1/messages', {
      max_tokens: 16,
      max_pixels: 200_000,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: wide.split(',')[1] } },
            { type: 'text', text: 'what?' },
          ],
        },
      ],
    });
    assert.equal(anthropic.status, 200);
    assert.deepEqual(await sentSize(), [588, 308]);
  });

  test('bad values are a 400 invalid_image_budget in each dialect’s own error shape', async () => {
    const bad: Array<[string, Record<string, unknown>]> = [
      ['negative', { max_pixels: -5 }],
      ['zero', { min_pixels: 0 }],
      ['not a number', { max_pixels: 'lots' }],
      ['a fraction', { min_pixels: 1.5 }],
      ['min above max', { min_pixels: 300_000, max_pixels: 200_000 }],
    ];
    for (const [what, extras] of bad) {
      const res = await chat({ url: wide }, extras);
      assert.equal(res.status, 400, what);
      const body = (await res.json()) as { error: { code: string; param: string } };
      assert.equal(body.error.code, 'invalid_image_budget', what);
      assert.match(body.error.param, /_pixels$/, what);
    }
    const inPart = await chat({ url: wide, min_pixels: 9, max_pixels: 4 });
    assert.equal(inPart.status, 400);
    const partError = ((await inPart.json()) as { error: { code: string; param: string } }).error;
    assert.deepEqual(
      [partError.code, partError.param],
      ['invalid_image_budget', 'messages.0.content.0.image_url.min_pixels'],
    );
    const nested = await chat({ url: wide, max_pixels: 'x' });
    assert.equal(((await nested.json()) as { error: { code: string } }).error.code, 'invalid_image_budget');

    const anthropic = await post('/v1/messages', {
      max_tokens: 16,
      min_pixels: -1,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(anthropic.status, 400);
    const a = (await anthropic.json()) as { type: string; error: { type: string; code: string } };
    assert.deepEqual([a.type, a.error.type, a.error.code], ['error', 'invalid_request_error', 'invalid_image_budget']);

    const zhipu = await post('/api/paas/v4/chat/completions', {
      min_pixels: 5,
      max_pixels: 1,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(zhipu.status, 400);
    assert.equal(
      ((await zhipu.json()) as { error: { glimpse_code: string } }).error.glimpse_code,
      'invalid_image_budget',
    );

    const responses = await post('/v1/responses', { input: 'hi', max_pixels: 0 });
    assert.equal(responses.status, 400);
    assert.equal(((await responses.json()) as { error: { code: string } }).error.code, 'invalid_image_budget');
  });
});
