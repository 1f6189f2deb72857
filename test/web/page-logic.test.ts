// The page's pure logic, run in node: SSE decoding, thinking split, box parsing, history building,
// and how the streaming client classifies every way a request can end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseDecoder, queuePositionFromComment } from '../../web/src/sse.ts';
import { splitThinking } from '../../web/src/think.ts';
import { splitBoxes, parseBoxList, serverBoxes } from '../../web/src/boxes.ts';
import { toWireMessages } from '../../web/src/conversation.ts';
import { classifyError, streamChat, type ChatOutcome } from '../../web/src/client.ts';
import { detectLang, translator } from '../../web/src/i18n.ts';
import { fitWithin } from '../../web/src/images.ts';
import type { Message } from '../../web/src/store.ts';

test('the SSE decoder joins events split at any byte, including between \\r and \\n', () => {
  const wire = ': queued position=3\r\ndata: {"a":1}\r\n\r\ndata: line1\ndata: line2\n\n: ping\n\ndata: [DONE]\n\n';
  for (let cut = 1; cut < wire.length; cut++) {
    const d = new SseDecoder();
    const events = [...d.push(wire.slice(0, cut)), ...d.push(wire.slice(cut)), ...d.end()];
    assert.deepEqual(
      events,
      [
        { kind: 'comment', text: 'queued position=3' },
        { kind: 'data', data: '{"a":1}' },
        { kind: 'data', data: 'line1\nline2' },
        { kind: 'comment', text: 'ping' },
        { kind: 'data', data: '[DONE]' },
      ],
      `cut at ${cut}`,
    );
  }
});

test('a queue comment gives its position and other comments give none', () => {
  assert.equal(queuePositionFromComment('queued position=7'), 7);
  assert.equal(queuePositionFromComment('queued position: 2'), 2);
  assert.equal(queuePositionFromComment('heartbeat'), null);
  assert.equal(queuePositionFromComment(''), null);
});

test('inline <think> blocks are split from the answer, and a half-arrived tag is hidden while streaming', () => {
  assert.deepEqual(splitThinking('<think>look at the cat</think>It is a cat.'), {
    thinking: 'look at the cat',
    answer: 'It is a cat.',
    thinkingOpen: false,
  });
  assert.deepEqual(splitThinking('<think>still going', true), {
    thinking: 'still going',
    answer: '',
    thinkingOpen: true,
  });
  assert.deepEqual(splitThinking('<think>a</thi', true), { thinking: 'a', answer: '', thinkingOpen: true });
  assert.equal(splitThinking('Answer <thi', true).answer, 'Answer ');
  // Templates that open the block in the prompt leave only the closing tag in the output.
  assert.deepEqual(splitThinking('pondering</think>Done.'), {
    thinking: 'pondering',
    answer: 'Done.',
    thinkingOpen: false,
  });
  assert.deepEqual(splitThinking('plain answer'), { thinking: '', answer: 'plain answer', thinkingOpen: false });
});

test('box markers become numbered boxes, reversed corners are put in order, and non-coordinates stay as highlighted text', () => {
  const { segments, boxes } = splitBoxes(
    'cat <|begin_of_box|>[100,200,500,800]<|end_of_box|> dogs <|begin_of_box|>[[900,400,600,100],[0,0,10,10]]<|end_of_box|> answer <|begin_of_box|>42<|end_of_box|>',
  );
  assert.deepEqual(
    boxes.map((b) => [b.index, b.x1, b.y1, b.x2, b.y2]),
    [
      [1, 100, 200, 500, 800],
      [2, 600, 100, 900, 400],
      [3, 0, 0, 10, 10],
    ],
  );
  assert.deepEqual(
    segments.map((s) => s.kind),
    ['text', 'boxes', 'text', 'boxes', 'text', 'highlight'],
  );
  assert.equal(parseBoxList('[1,2,3]', 1), null);
  assert.equal(parseBoxList('[5,5,5,9]', 1), null, 'a box with no width is not drawn');
  assert.deepEqual(
    parseBoxList('[-50,0,1200,500]', 1)?.map((b) => [b.x1, b.x2]),
    [[0, 1000]],
    'coordinates are clamped to 0..1000',
  );
});

test('an unfinished box marker is held back while it streams', () => {
  const { segments, boxes } = splitBoxes('here <|begin_of_box|>[100,2');
  assert.equal(boxes.length, 0);
  assert.deepEqual(segments, [{ kind: 'text', text: 'here ' }]);
  assert.deepEqual(splitBoxes('here <|begin_of').segments, [{ kind: 'text', text: 'here ' }]);
});

test('history sent back carries images and answers but never thinking or failed answers', () => {
  const img = {
    id: 'i',
    name: 'a.png',
    dataUrl: 'data:image/png;base64,AAAA',
    mime: 'image/png',
    width: 2,
    height: 2,
    bytes: 3,
    originalWidth: 2,
    originalHeight: 2,
    originalBytes: 3,
  };
  const messages: Message[] = [
    { id: 'u1', role: 'user', text: 'what is it?', images: [img] },
    {
      id: 'a1',
      role: 'assistant',
      model: 'm',
      content: '<think>secret plan</think>A cat.',
      reasoning: 'more secret',
      status: 'done',
    },
    { id: 'u2', role: 'user', text: 'and now?', images: [] },
    {
      id: 'a2',
      role: 'assistant',
      model: 'm',
      content: '',
      reasoning: '',
      status: 'failed',
      failure: { kind: 'unreachable' },
    },
  ];
  const wire = toWireMessages(messages, '  Be brief.  ');
  assert.deepEqual(wire, [
    { role: 'system', content: 'Be brief.' },
    {
      role: 'user',
      content: [
        { type: 'image_url', image_url: { url: img.dataUrl } },
        { type: 'text', text: 'what is it?' },
      ],
    },
    { role: 'assistant', content: 'A cat.' },
    { role: 'user', content: [{ type: 'text', text: 'and now?' }] },
  ]);
  assert.ok(!JSON.stringify(wire).includes('secret'));
});

test('when the conversation holds more images than the server takes per request, the oldest are left out and marked', () => {
  const img = (name: string) => ({
    id: name,
    name,
    dataUrl: `data:image/png;base64,${name}`,
    mime: 'image/png',
    width: 1,
    height: 1,
    bytes: 1,
    originalWidth: 1,
    originalHeight: 1,
    originalBytes: 1,
  });
  const messages: Message[] = [
    { id: 'u1', role: 'user', text: 'first', images: [img('a'), img('b')] },
    { id: 'a1', role: 'assistant', model: 'm', content: 'ok', reasoning: '', status: 'done' },
    { id: 'u2', role: 'user', text: 'second', images: [img('c')] },
  ];
  const wire = toWireMessages(messages, '', 2);
  assert.deepEqual(wire[0]?.content, [
    { type: 'text', text: '[earlier image a not re-sent]' },
    { type: 'image_url', image_url: { url: 'data:image/png;base64,b' } },
    { type: 'text', text: 'first' },
  ]);
  assert.deepEqual(wire[2]?.content, [
    { type: 'image_url', image_url: { url: 'data:image/png;base64,c' } },
    { type: 'text', text: 'second' },
  ]);
});

test('errors are classified by status and code so the page can say what happened', () => {
  assert.equal(classifyError(429, { code: 'queue_full', message: 'full' }, '7').kind, 'rate_limited');
  assert.equal(classifyError(429, { code: 'queue_full' }, '7').retryAfter, 7);
  assert.equal(classifyError(401, { code: 'unauthorized' }).kind, 'unauthorized');
  assert.equal(classifyError(504, { code: 'request_timeout' }).kind, 'timeout');
  assert.equal(classifyError(503, { code: 'queue_timeout' }).kind, 'timeout');
  assert.equal(classifyError(undefined, { code: 'idle_timeout' }).kind, 'timeout');
  assert.equal(classifyError(503, { code: 'model_loading' }).kind, 'loading');
  assert.equal(classifyError(503, { code: 'engine_unavailable' }).kind, 'unavailable');
  assert.equal(classifyError(502, { code: 'upstream_unavailable' }).kind, 'unavailable');
  const other = classifyError(422, { code: 'invalid_image', message: 'not an image' });
  assert.deepEqual([other.kind, other.code, other.message], ['error', 'invalid_image', 'not an image']);
});

function sseResponse(
  parts: Array<string | number>,
  init: ResponseInit = {},
): (input: unknown, req?: RequestInit) => Promise<Response> {
  return async (_input, req) => {
    const signal = req?.signal;
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        const enc = new TextEncoder();
        for (const p of parts) {
          if (signal?.aborted) return;
          if (typeof p === 'number') await new Promise((r) => setTimeout(r, p));
          else controller.enqueue(enc.encode(p));
        }
        controller.close();
      },
    });
    signal?.addEventListener('abort', () => body.cancel().catch(() => {}));
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' }, ...init });
  };
}

async function run(
  fetchImpl: (input: unknown, req?: RequestInit) => Promise<Response>,
  stallMs = 2000,
  signal = new AbortController().signal,
) {
  const seen = { content: '', reasoning: '', queued: [] as number[] };
  const outcome: ChatOutcome = await streamChat({
    body: { model: 'm', messages: [], temperature: 0, top_p: 1, max_tokens: 8 },
    signal,
    stallMs,
    fetchImpl: fetchImpl as typeof fetch,
    callbacks: {
      onContent: (t) => (seen.content += t),
      onReasoning: (t) => (seen.reasoning += t),
      onQueued: (n) => seen.queued.push(n),
    },
  });
  return { outcome, seen };
}

const chunk = (delta: object, extra: object = {}) =>
  `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;

test('the client says when the request was accepted and when a queued one was admitted', async () => {
  const calls: string[] = [];
  const outcome = await streamChat({
    body: { model: 'm', messages: [], temperature: 0, top_p: 1, max_tokens: 8 },
    signal: new AbortController().signal,
    stallMs: 2000,
    fetchImpl: sseResponse([
      ': queued position=1\n\n',
      ': admitted waited_ms=12\n\n',
      chunk({ content: 'ok' }),
      'data: [DONE]\n\n',
    ]) as unknown as typeof fetch,
    callbacks: {
      onAccepted: () => calls.push('accepted'),
      onQueued: (n) => calls.push(`queued ${n}`),
      onAdmitted: () => calls.push('admitted'),
      onContent: (t) => calls.push(`content ${t}`),
    },
  });
  assert.equal(outcome.kind, 'done');
  assert.deepEqual(calls, ['accepted', 'queued 1', 'admitted', 'content ok']);
});

test("the finish chunk's glimpse_boxes reach the page as the boxes it draws; a field in another shape is not used", async () => {
  const field = [{ index: 1, image: 0, x1: 200, y1: 200, x2: 1000, y2: 800, normalized: [100, 200, 500, 800] }];
  let got: unknown;
  const outcome = await streamChat({
    body: { model: 'm', messages: [], temperature: 0, top_p: 1, max_tokens: 8 },
    signal: new AbortController().signal,
    stallMs: 2000,
    fetchImpl: sseResponse([
      chunk({ content: 'box' }),
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: '', glimpse_boxes: field }, finish_reason: 'stop' }] })}\n\n`,
      'data: [DONE]\n\n',
    ]) as unknown as typeof fetch,
    callbacks: { onBoxes: (f) => (got = f) },
  });
  assert.equal(outcome.kind, 'done');
  assert.deepEqual(serverBoxes(got), [{ index: 1, x1: 100, y1: 200, x2: 500, y2: 800 }]);
  assert.equal(serverBoxes([{ index: 1, normalized: [1, 2, 3] }]), undefined);
  assert.equal(serverBoxes({ boxes: [] }), undefined);
});

test('a full stream yields reasoning, content, queue position and usage, and ends done', async () => {
  const { outcome, seen } = await run(
    sseResponse([
      ': queued position=2\n\n',
      chunk({ reasoning_content: 'hm' }),
      chunk({ content: 'Hel' }),
      chunk({ content: 'lo' }),
      `data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}\n\n`,
      'data: [DONE]\n\n',
    ]),
  );
  assert.deepEqual(seen, { content: 'Hello', reasoning: 'hm', queued: [2] });
  assert.deepEqual(outcome, { kind: 'done', finishReason: null, usage: { promptTokens: 5, completionTokens: 3 } });
});

test('an error event after streaming began ends the answer as failed with its code', async () => {
  const { outcome, seen } = await run(
    sseResponse([
      chunk({ content: 'par' }),
      'data: {"error":{"message":"too slow","type":"server_error","code":"idle_timeout"}}\n\n',
      'data: [DONE]\n\n',
    ]),
  );
  assert.equal(seen.content, 'par');
  assert.equal(outcome.kind, 'failed');
  assert.equal(outcome.kind === 'failed' && outcome.failure.kind, 'timeout');
});

test('a stream that closes without [DONE] is reported as interrupted, not done', async () => {
  const { outcome } = await run(sseResponse([chunk({ content: 'half' })]));
  assert.equal(outcome.kind === 'failed' && outcome.failure.kind, 'interrupted');
});

test('silence longer than the stall limit is detected, while heartbeats keep a slow stream alive', async () => {
  const stalled = await run(
    sseResponse([chunk({ content: 'a' }), 400, chunk({ content: 'b' }), 'data: [DONE]\n\n']),
    150,
  );
  assert.equal(stalled.outcome.kind === 'failed' && stalled.outcome.failure.kind, 'stalled');
  const alive = await run(
    sseResponse([
      chunk({ content: 'a' }),
      100,
      ': ping\n\n',
      100,
      ': ping\n\n',
      100,
      chunk({ content: 'b' }),
      'data: [DONE]\n\n',
    ]),
    150,
  );
  assert.equal(alive.outcome.kind, 'done');
  assert.equal(alive.seen.content, 'ab');
});

test('HTTP errors before streaming carry status, code and Retry-After; a refused connection is unreachable', async () => {
  const limited = await run(
    async () =>
      new Response(
        JSON.stringify({ error: { message: 'busy', type: 'rate_limit_error', param: null, code: 'queue_full' } }),
        { status: 429, headers: { 'retry-after': '3' } },
      ),
  );
  assert.deepEqual(limited.outcome.kind === 'failed' && limited.outcome.failure, {
    kind: 'rate_limited',
    code: 'queue_full',
    status: 429,
    message: 'busy',
    retryAfter: 3,
  });
  const down = await run(async () => {
    throw new TypeError('fetch failed');
  });
  assert.equal(down.outcome.kind === 'failed' && down.outcome.failure.kind, 'unreachable');
});

test('the user stopping mid-stream ends as stopped', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 80);
  const { outcome } = await run(
    sseResponse([chunk({ content: 'a' }), 1000, chunk({ content: 'b' }), 'data: [DONE]\n\n']),
    5000,
    ac.signal,
  );
  assert.equal(outcome.kind, 'stopped');
});

test('the language follows the browser and every key has both languages', () => {
  assert.equal(detectLang(['zh-CN', 'en']), 'zh');
  assert.equal(detectLang(['fr-FR', 'en-GB']), 'en');
  assert.equal(detectLang(['de']), 'en');
  const en = translator('en');
  const zh = translator('zh');
  assert.equal(en('send'), 'Send');
  assert.equal(zh('send'), '发送');
  assert.equal(en('stateQueuedAt', { n: 4 }), 'Queued, position 4');
});

test('images are fitted inside the bound on their longest edge, keeping the aspect ratio', () => {
  assert.deepEqual(fitWithin(4000, 3000, 1024), { width: 1024, height: 768 });
  assert.deepEqual(fitWithin(300, 5000, 1024), { width: 61, height: 1024 });
  assert.deepEqual(fitWithin(800, 600, 1024), { width: 800, height: 600 });
});
