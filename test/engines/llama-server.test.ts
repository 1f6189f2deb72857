/**
 * glimpse in front of llama.cpp's llama-server (the route for GLM-4.6V-Flash's GGUF build on one
 * machine without vLLM), against a double of its OpenAI dialect (test/helpers/fake-llama-server.ts):
 * thinking arrives as `reasoning_content`, images must reach it as base64 data URLs of a format
 * stb_image reads. An image given as an http URL, an upload or a WebP is sent the way it accepts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { startFakeLlamaServer, type FakeLlamaServer } from '../helpers/fake-llama-server.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';

const SCRIPT = { reasoning: ['The page shows', ' a red block.'], content: ['A red ', 'block on ', 'white.'] };
/** What the model answers when offered tools: a short thought, then two calls, arguments in pieces. */
const TOOL_SCRIPT = {
  reasoning: ['I need the total.'],
  content: [],
  toolCalls: [
    { name: 'lookup_invoice', arguments: ['{"number"', ':"INV-', '0042"}'] },
    { name: 'convert_currency', arguments: ['{"amount":', '1280.5,"to":"CNY"}'] },
  ],
};
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'lookup_invoice',
      description: 'Find an invoice by its number.',
      parameters: { type: 'object', properties: { number: { type: 'string' } }, required: ['number'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'convert_currency',
      parameters: {
        type: 'object',
        properties: { amount: { type: 'number' }, to: { type: 'string' } },
        required: ['amount', 'to'],
      },
    },
  },
];

let llama: FakeLlamaServer;
let glimpse: RunningGlimpse;
let imageHost: Server;
let imageHostUrl: string;
let webp: Buffer;

before(async () => {
  llama = await startFakeLlamaServer({ script: (body) => (body.tools ? TOOL_SCRIPT : SCRIPT) });
  glimpse = await startGlimpse({
    engine: 'upstream',
    upstream: llama.url,
    upstreamModel: llama.model,
    images: { allowPrivateNetworks: true },
  });
  webp = await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 220, g: 30, b: 30 } } })
    .webp()
    .toBuffer();
  // An image on an http host: llama-server fetches no URLs, so glimpse must.
  imageHost = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/webp' }).end(webp));
  await new Promise<void>((r) => imageHost.listen(0, '127.0.0.1', r));
  imageHostUrl = `http://127.0.0.1:${(imageHost.address() as AddressInfo).port}/page.webp`;
});

after(async () => {
  await glimpse?.close();
  await llama?.close();
  await new Promise<void>((r) => imageHost?.close(() => r()));
});

/** The SSE events of a streamed chat completion, parsed. */
async function streamed(res: Response): Promise<any[]> {
  const text = await res.text();
  const events = text.split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]');
  assert.ok(text.trimEnd().endsWith('data: [DONE]'), text.slice(-200));
  return events.map((e) => JSON.parse(e.slice('data: '.length)));
}

/** A Chat Completions request to glimpse for llama-server's model. */
const postChat = (body: Record<string, unknown>) =>
  fetch(`${glimpse.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: llama.model, ...body }),
  });

const chat = (image: string, stream: boolean) =>
  postChat({
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: image } },
          { type: 'text', text: 'What is on this page?' },
        ],
      },
    ],
  });

test('a WebP image given by URL is fetched by glimpse and reaches llama-server as a JPEG data URL; thinking and answer stream back apart', async () => {
  const res = await chat(imageHostUrl, true);
  assert.equal(res.status, 200, await res.clone().text());
  const events = await streamed(res);
  const reasoning = events.map((e) => e.choices?.[0]?.delta?.reasoning_content ?? '').join('');
  const content = events.map((e) => e.choices?.[0]?.delta?.content ?? '').join('');
  assert.equal(reasoning, SCRIPT.reasoning.join(''));
  assert.equal(content, SCRIPT.content.join(''));
  // every piece of thinking came before the answer began
  const firstContent = events.findIndex((e) => e.choices?.[0]?.delta?.content);
  const lastReasoning = events.findLastIndex((e) => e.choices?.[0]?.delta?.reasoning_content);
  assert.ok(lastReasoning < firstContent);
  const usage = events.find((e) => e.usage)?.usage;
  assert.equal(usage?.prompt_tokens, 20 + 256);
  assert.equal(usage?.completion_tokens, 5);

  const sent = llama.requests.at(-1);
  const part = sent.messages[0].content.find((p: { type: string }) => p.type === 'image_url');
  assert.match(part.image_url.url, /^data:image\/jpeg;base64,/);
  assert.equal(llama.images.at(-1)?.format, 'jpeg');
  const meta = await sharp(llama.images.at(-1)!.bytes).metadata();
  assert.deepEqual([meta.width, meta.height], [96, 64]);
});

test('not streamed: the answer and its reasoning_content come back whole', async () => {
  const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 0, g: 0, b: 200 } } })
    .png()
    .toBuffer();
  const res = await chat(`data:image/png;base64,${png.toString('base64')}`, false);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { choices: { message: { content: string; reasoning_content?: string } }[] };
  assert.equal(body.choices[0]!.message.content, SCRIPT.content.join(''));
  assert.equal(body.choices[0]!.message.reasoning_content, SCRIPT.reasoning.join(''));
});

test("the double holds glimpse to llama-server's image rules: a WebP data URL sent straight to it is refused", async () => {
  // What glimpse would have sent with images.outputFormat webp: llama-server's decoder cannot read it.
  const res = await fetch(`${llama.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: llama.model,
      messages: [
        {
          role: 'user',
          content: [{ type: 'image_url', image_url: { url: `data:image/webp;base64,${webp.toString('base64')}` } }],
        },
      ],
    }),
  });
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), {
    error: { code: 400, message: 'Failed to load image or audio file', type: 'invalid_request_error' },
  });
  const remote = await fetch(`${llama.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: llama.model,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: imageHostUrl } }] }],
    }),
  });
  assert.equal(remote.status, 400);
});

const askWithTools = (stream: boolean, extra: Record<string, unknown> = {}) =>
  postChat({
    stream,
    tools: TOOLS,
    tool_choice: 'auto',
    messages: [{ role: 'user', content: 'What is invoice INV-0042 in yuan?' }],
    ...extra,
  });

test('tools pass through to llama-server as given, and its streamed tool calls come back as Chat Completions tool_calls deltas', async () => {
  const res = await askWithTools(true);
  assert.equal(res.status, 200, await res.clone().text());
  const sent = llama.requests.at(-1);
  assert.deepEqual(sent.tools, TOOLS);
  assert.equal(sent.tool_choice, 'auto');

  const events = await streamed(res);
  // Put the calls together by index, as a client of the Chat Completions stream does.
  const calls: { id?: string; type?: string; name: string; arguments: string }[] = [];
  for (const e of events)
    for (const d of e.choices?.[0]?.delta?.tool_calls ?? []) {
      const c = (calls[d.index] ??= { name: '', arguments: '' });
      if (d.id) c.id = d.id;
      if (d.type) c.type = d.type;
      c.name += d.function?.name ?? '';
      c.arguments += d.function?.arguments ?? '';
    }
  assert.deepEqual(
    calls.map((c) => [c.type, c.name, JSON.parse(c.arguments)]),
    [
      ['function', 'lookup_invoice', { number: 'INV-0042' }],
      ['function', 'convert_currency', { amount: 1280.5, to: 'CNY' }],
    ],
  );
  assert.equal(new Set(calls.map((c) => c.id)).size, 2, 'each call has an id of its own');
  assert.ok(calls.every((c) => typeof c.id === 'string' && c.id.length > 0));
  assert.equal(events.map((e) => e.choices?.[0]?.delta?.reasoning_content ?? '').join(''), 'I need the total.');
  assert.equal(events.map((e) => e.choices?.[0]?.delta?.content ?? '').join(''), '');
  assert.equal(events.find((e) => e.choices?.[0]?.finish_reason)?.choices[0].finish_reason, 'tool_calls');
});

test('not streamed: the tool calls arrive whole in message.tool_calls, with finish_reason tool_calls', async () => {
  const res = await askWithTools(false);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as any;
  const choice = body.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.ok(!choice.message.content, JSON.stringify(choice.message));
  assert.deepEqual(
    choice.message.tool_calls.map((c: any) => [c.type, c.function.name, JSON.parse(c.function.arguments)]),
    [
      ['function', 'lookup_invoice', { number: 'INV-0042' }],
      ['function', 'convert_currency', { amount: 1280.5, to: 'CNY' }],
    ],
  );
  assert.ok(choice.message.tool_calls.every((c: any) => typeof c.id === 'string' && c.id.length > 0));
});

test("the tools' results go back to llama-server as OpenAI tool messages after the assistant's calls", async () => {
  const call = {
    id: 'call_1',
    type: 'function',
    function: { name: 'lookup_invoice', arguments: '{"number":"INV-0042"}' },
  };
  const res = await askWithTools(false, {
    tool_choice: 'none',
    messages: [
      { role: 'user', content: 'What is invoice INV-0042 in yuan?' },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"total":1280.5,"currency":"USD"}' },
    ],
  });
  assert.equal(res.status, 200, await res.clone().text());
  const sent = llama.requests.at(-1);
  assert.equal(sent.tool_choice, 'none');
  assert.deepEqual(sent.messages.slice(1), [
    { role: 'assistant', content: null, tool_calls: [call] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"total":1280.5,"currency":"USD"}' },
  ]);
});

test('the double refuses tools as llama-server does when it was started without --jinja', async () => {
  const plain = await startFakeLlamaServer({ script: () => SCRIPT, jinja: false });
  try {
    const res = await fetch(`${plain.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: plain.model, tools: TOOLS, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), {
      error: { code: 400, message: 'tools param requires --jinja flag', type: 'invalid_request_error' },
    });
  } finally {
    await plain.close();
  }
});
