/**
 * `glimpse_boxes` on the other dialects' answers, through a real glimpse in front of the vLLM
 * double: Anthropic Messages and Zhipu's chat (whole and streamed) and every GLM-4.6V-Flash-WEB shape
 * (/v1/multimodal/completions, /v1/chat, /infer, /api/v1/infer, /ws/infer), each in pixels of the
 * image the client sent, as Chat Completions gives them (test/protocols/boxes.test.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import WebSocket from 'ws';
import { upstreamSuite } from '../helpers/upstream-suite.js';

const B = '<|begin_of_box|>';
const E = '<|end_of_box|>';
// Markers cut at other places than in boxes.test.ts, so each dialect's stream scanner meets its own splits.
const content = ['Red: ', `${B}[100,`, `200,500,800]${E}`, '; blue: ', `${B}[[600,100,900,`, `400]]${E}`, '.'];
// A 2000x1000 image shrunk to 512 px on the way: pixel boxes must be in the sent size.
const expected = [
  { index: 1, image: 0, x1: 200, y1: 200, x2: 1000, y2: 800, normalized: [100, 200, 500, 800] },
  { index: 2, image: 0, x1: 1200, y1: 100, x2: 1800, y2: 400, normalized: [600, 100, 900, 400] },
];

describe("glimpse_boxes on Anthropic, Zhipu's and GLM-WEB answers", () => {
  const suite = upstreamSuite({ before, after }, { cache: { enabled: false }, images: { maxEdge: 512 } });
  let png: Buffer;
  let dataUrl: string;
  before(async () => {
    png = await sharp({ create: { width: 2000, height: 1000, channels: 3, background: '#c33' } })
      .png()
      .toBuffer();
    dataUrl = `data:image/png;base64,${png.toString('base64')}`;
  });
  const post = (path: string, body: unknown) => {
    suite.script = { reasoning: [], content };
    return fetch(suite.glimpse.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(body),
    });
  };
  const anthropicBody = (stream: boolean) => ({
    model: 'glm-4.6v-flash',
    max_tokens: 64,
    stream,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png.toString('base64') } },
          { type: 'text', text: 'Where are the blocks?' },
        ],
      },
    ],
  });

  test('Anthropic Messages: a top-level field on the message, and on the closing message_delta of a stream', async () => {
    const whole = (await (await post('/v1/messages', anthropicBody(false))).json()) as Record<string, unknown>;
    assert.deepEqual(whole.content, [{ type: 'text', text: content.join('') }]);
    assert.deepEqual(whole.glimpse_boxes, expected);

    const events = (await (await post('/v1/messages', anthropicBody(true))).text())
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)) as { type: string; delta?: Record<string, unknown> });
    const withBoxes = events.filter((e) => e.delta && 'glimpse_boxes' in e.delta);
    assert.deepEqual(
      withBoxes.map((e) => e.type),
      ['message_delta'],
    );
    assert.equal(withBoxes[0].delta?.stop_reason, 'end_turn');
    assert.deepEqual(withBoxes[0].delta?.glimpse_boxes, expected);
  });

  const zhipuBody = (stream: boolean) => ({
    model: 'glm-4.6v-flash',
    stream,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: dataUrl } },
          { type: 'text', text: 'Where are the blocks?' },
        ],
      },
    ],
  });

  test("Zhipu's chat: on the message, and on the finishing chunk's delta of a stream", async () => {
    const whole = (await (await post('/api/paas/v4/chat/completions', zhipuBody(false))).json()) as {
      choices: Array<{ message: Record<string, unknown> }>;
    };
    assert.equal(whole.choices[0].message.content, content.join(''));
    assert.deepEqual(whole.choices[0].message.glimpse_boxes, expected);

    const chunks = (await (await post('/api/paas/v4/chat/completions', zhipuBody(true))).text())
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map(
        (l) => JSON.parse(l.slice(6)) as { choices: Array<{ delta: Record<string, unknown>; finish_reason: unknown }> },
      );
    assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), content.join(''));
    const withBoxes = chunks.filter((c) => 'glimpse_boxes' in c.choices[0].delta);
    assert.equal(withBoxes.length, 1);
    assert.equal(withBoxes[0], chunks.at(-1), 'the finishing chunk, the last one');
    assert.equal(withBoxes[0].choices[0].finish_reason, 'stop');
    assert.deepEqual(withBoxes[0].choices[0].delta.glimpse_boxes, expected);
  });

  test('/v1/multimodal/completions on the message, /v1/chat beside response', async () => {
    const mm = (await (
      await post('/v1/multimodal/completions', { image: dataUrl, prompt: 'Where are the blocks?' })
    ).json()) as { choices: Array<{ message: Record<string, unknown> }> };
    assert.equal(mm.choices[0].message.content, content.join(''));
    assert.deepEqual(mm.choices[0].message.glimpse_boxes, expected);

    const chat = (await (await post('/v1/chat', { image_url: dataUrl, prompt: 'Where?' })).json()) as Record<
      string,
      unknown
    >;
    assert.equal(chat.response, content.join(''));
    assert.deepEqual(chat.glimpse_boxes, expected);
  });

  test('/infer (multipart) beside result', async () => {
    suite.script = { reasoning: [], content };
    const form = new FormData();
    form.append('image', new Blob([png], { type: 'image/png' }), 'blocks.png');
    form.append('prompt', 'Where are the blocks?');
    const res = await fetch(suite.glimpse.url + '/infer', { method: 'POST', body: form });
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.code, 0);
    assert.equal(body.result, content.join(''));
    assert.deepEqual(body.glimpse_boxes, expected);
  });

  test('/api/v1/infer: the text pieces unchanged, then one named glimpse_boxes event before [END]', async () => {
    const text = await (await post('/api/v1/infer', { image: dataUrl, prompt: 'Where?' })).text();
    const frames = text.split('\n\n').filter(Boolean);
    const pieces = frames.filter((f) => f.startsWith('data: ') && f !== 'data: [END]').map((f) => f.slice(6));
    assert.equal(pieces.join(''), content.join(''));
    const named = frames.filter((f) => f.startsWith('event: glimpse_boxes\n'));
    assert.equal(named.length, 1);
    assert.deepEqual(JSON.parse(named[0].split('\ndata: ')[1]), { glimpse_boxes: expected });
    assert.equal(frames.at(-1), 'data: [END]');
    assert.equal(frames.at(-2), named[0]);
  });

  test('/ws/infer: on the done message', async () => {
    suite.script = { reasoning: [], content };
    const ws = new WebSocket(suite.glimpse.url.replace('http', 'ws') + '/ws/infer');
    await new Promise<void>((res, rej) => ws.once('open', () => res()).once('error', rej));
    const done = new Promise<Record<string, unknown>>((res) =>
      ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        if (m.type === 'done' || m.type === 'error') res(m);
      }),
    );
    ws.send(JSON.stringify({ type: 'request', id: 'b1', prompt: 'Where are the blocks?', image: dataUrl }));
    const m = await done;
    ws.close();
    assert.equal(m.type, 'done');
    assert.deepEqual(m.glimpse_boxes, expected);
  });

  test('no boxes, no field, in every shape', async () => {
    const noBoxes = async (path: string, body: unknown) => {
      suite.script = { reasoning: [], content: ['Red and blue.'] };
      const res = await fetch(suite.glimpse.url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify(body),
      });
      return (await res.text()).includes('glimpse_boxes');
    };
    assert.equal(await noBoxes('/v1/messages', anthropicBody(false)), false);
    assert.equal(await noBoxes('/v1/messages', anthropicBody(true)), false);
    assert.equal(await noBoxes('/api/paas/v4/chat/completions', zhipuBody(false)), false);
    assert.equal(await noBoxes('/api/paas/v4/chat/completions', zhipuBody(true)), false);
    assert.equal(await noBoxes('/v1/chat', { image_url: dataUrl, prompt: 'Where?' }), false);
    assert.equal(await noBoxes('/api/v1/infer', { image: dataUrl, prompt: 'Where?' }), false);
  });
});
