/**
 * Grounding boxes as data: the parser on its own (markers split across stream pieces, malformed
 * boxes ignored), and `glimpse_boxes` on Chat Completions answers through a real glimpse in front
 * of the vLLM double, converted to the pixels of the image the client sent.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { BoxScanner, boxImage, boxesOut, findBoxes } from '../../src/protocols/boxes.js';
import { upstreamSuite } from '../helpers/upstream-suite.js';

const B = '<|begin_of_box|>';
const E = '<|end_of_box|>';

describe('box parsing', () => {
  test('one box and a list of boxes, numbered in order', () => {
    assert.deepEqual(findBoxes(`a ${B}[100,200,500,800]${E} b ${B}[[600,100,900,400],[0,0,10,10]]${E}`), [
      { index: 1, x1: 100, y1: 200, x2: 500, y2: 800 },
      { index: 2, x1: 600, y1: 100, x2: 900, y2: 400 },
      { index: 3, x1: 0, y1: 0, x2: 10, y2: 10 },
    ]);
  });

  test('the same boxes whatever the stream pieces, even a marker cut inside its token', () => {
    const text = `The cat ${B}[100,200,500,800]${E} and ${B}[[600,100,900,400]]${E}.`;
    const whole = findBoxes(text);
    assert.equal(whole.length, 2);
    for (let cut = 1; cut < text.length; cut++) {
      const s = new BoxScanner();
      s.push(text.slice(0, cut));
      s.push(text.slice(cut));
      assert.deepEqual(s.boxes, whole, `cut at ${cut}`);
    }
    const oneByOne = new BoxScanner();
    for (const ch of text) oneByOne.push(ch);
    assert.deepEqual(oneByOne.boxes, whole);
  });

  test('malformed markers are ignored: text inside, too few numbers, no area, unclosed; corners are ordered and clamped', () => {
    const text = [
      `${B}The answer is 42${E}`,
      `${B}[1,2,3]${E}`,
      `${B}[5,5,5,90]${E}`,
      `${B}[abc,1,2,3]${E}`,
      `${B}[500,800,100,200]${E}`,
      `${B}[-20,0,1200,50]${E}`,
      `${B}[1,2,3,4]`,
    ].join(' ');
    assert.deepEqual(findBoxes(text), [
      { index: 1, x1: 100, y1: 200, x2: 500, y2: 800 },
      { index: 2, x1: 0, y1: 0, x2: 1000, y2: 50 },
    ]);
  });

  test('the boxes are on the first image of the last user message that has one; its size as sent, or the rendered size', () => {
    const img = (w: number, h: number, original?: { width: number; height: number }) => ({
      type: 'image',
      resolved: { width: w, height: h, original },
    });
    const messages = [
      { role: 'user', content: [img(10, 10), img(20, 20)] },
      { role: 'assistant', content: [{ type: 'text' }] },
      { role: 'user', content: [{ type: 'text' }, img(100, 50, { width: 2000, height: 1000 }), img(30, 30)] },
      { role: 'user', content: [{ type: 'text' }] },
    ];
    assert.deepEqual(boxImage(messages), { index: 2, width: 2000, height: 1000 });
    assert.deepEqual(boxImage([{ role: 'user', content: [img(640, 480)] }]), { index: 0, width: 640, height: 480 });
    assert.equal(boxImage([{ role: 'user', content: [{ type: 'text' }] }]), undefined);
    const box = { index: 1, x1: 100, y1: 200, x2: 500, y2: 800 };
    assert.deepEqual(boxesOut([box], { index: 2, width: 2000, height: 1000 }), [
      { index: 1, image: 2, x1: 200, y1: 200, x2: 1000, y2: 800, normalized: [100, 200, 500, 800] },
    ]);
    assert.deepEqual(boxesOut([box], undefined), [{ index: 1, image: null, normalized: [100, 200, 500, 800] }]);
  });
});

describe('glimpse_boxes on Chat Completions', () => {
  // The image pipeline shrinks to at most 512 px here, so pixel boxes must come from the sent size, not the model's.
  const suite = upstreamSuite({ before, after }, { cache: { enabled: false }, images: { maxEdge: 512 } });
  const content = [
    'The red block is at ',
    `${B}[100,200,`,
    `500,800]${E}`,
    ' and the blue one at ',
    `${B}[[600,100,900,400]]${E}`,
    '.',
  ];
  let wide: string;
  let turned: string;
  before(async () => {
    const png = await sharp({ create: { width: 2000, height: 1000, channels: 3, background: '#c33' } })
      .png()
      .toBuffer();
    wide = `data:image/png;base64,${png.toString('base64')}`;
    // Stored 1000 wide and 600 high, shown turned a quarter (EXIF orientation 6): 600 x 1000 upright.
    const jpeg = await sharp({ create: { width: 1000, height: 600, channels: 3, background: '#33c' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    turned = `data:image/jpeg;base64,${jpeg.toString('base64')}`;
  });
  const ask = (url: string, stream: boolean) =>
    fetch(suite.glimpse.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        stream,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Where are the blocks?' },
              { type: 'image_url', image_url: { url } },
            ],
          },
        ],
      }),
    });

  test('a non-stream answer keeps the text and adds the boxes in pixels of the image as sent', async () => {
    suite.script = { reasoning: [], content };
    const res = await ask(wide, false);
    assert.equal(res.status, 200);
    const message = ((await res.json()) as { choices: Array<{ message: { content: string; glimpse_boxes: unknown } }> })
      .choices[0].message;
    assert.equal(message.content, content.join(''));
    assert.deepEqual(message.glimpse_boxes, [
      { index: 1, image: 0, x1: 200, y1: 200, x2: 1000, y2: 800, normalized: [100, 200, 500, 800] },
      { index: 2, image: 0, x1: 1200, y1: 100, x2: 1800, y2: 400, normalized: [600, 100, 900, 400] },
    ]);
  });

  test('a stream carries the boxes on its finish chunk only, in pixels of the upright image', async () => {
    suite.script = { reasoning: [], content };
    const res = await ask(turned, true);
    assert.equal(res.status, 200);
    const chunks = (await res.text())
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map(
        (l) =>
          JSON.parse(l.slice(6)) as {
            choices: Array<{ delta: { content?: string; glimpse_boxes?: unknown }; finish_reason: string | null }>;
          },
      );
    const withBoxes = chunks.filter((c) => c.choices[0]?.delta.glimpse_boxes);
    assert.equal(withBoxes.length, 1);
    assert.equal(withBoxes[0].choices[0].finish_reason, 'stop');
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), content.join(''));
    assert.deepEqual(withBoxes[0].choices[0].delta.glimpse_boxes, [
      { index: 1, image: 0, x1: 60, y1: 200, x2: 300, y2: 800, normalized: [100, 200, 500, 800] },
      { index: 2, image: 0, x1: 360, y1: 100, x2: 540, y2: 400, normalized: [600, 100, 900, 400] },
    ]);
  });

  test('the Responses API puts the same boxes on its message item, whole and streamed', async () => {
    suite.script = { reasoning: [], content };
    const input = [
      {
        role: 'user',
        content: [
          { type: 'input_text', text: 'Where are the blocks?' },
          { type: 'input_image', image_url: wide },
        ],
      },
    ];
    const post = (stream: boolean) =>
      fetch(suite.glimpse.url + '/v1/responses', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ stream, input }),
      });
    const expected = [
      { index: 1, image: 0, x1: 200, y1: 200, x2: 1000, y2: 800, normalized: [100, 200, 500, 800] },
      { index: 2, image: 0, x1: 1200, y1: 100, x2: 1800, y2: 400, normalized: [600, 100, 900, 400] },
    ];
    type Item = { type: string; glimpse_boxes?: unknown };
    const whole = (await (await post(false)).json()) as { output: Item[] };
    assert.deepEqual(whole.output.find((i) => i.type === 'message')?.glimpse_boxes, expected);
    suite.script = { reasoning: [], content };
    const events = (await (await post(true)).text())
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)) as { type: string; response?: { output: Item[] } });
    const completed = events.find((e) => e.type === 'response.completed');
    assert.deepEqual(completed?.response?.output.find((i) => i.type === 'message')?.glimpse_boxes, expected);
  });

  test('an answer without boxes has no field', async () => {
    suite.script = { reasoning: [], content: [`${B}Paris${E}`] };
    const res = await ask(wide, false);
    const message = ((await res.json()) as { choices: Array<{ message: Record<string, unknown> }> }).choices[0].message;
    assert.equal('glimpse_boxes' in message, false);
  });
});
