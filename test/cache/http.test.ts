import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { loadConfig } from '../../src/config/index.js';
import { createEngine } from '../../src/engines/index.js';
import { createServer, type Server } from '../../src/server/index.js';
import { createLogger } from '../../src/observability/index.js';
import type { Engine } from '../../src/core/index.js';

describe('X-Glimpse-Cache over HTTP on the simulated engine', () => {
  let server: Server;
  let url = '';
  let generations = 0;
  let png: Buffer;

  before(async () => {
    png = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#3366cc' } })
      .png()
      .toBuffer();
    const config = loadConfig({
      flags: {
        engine: 'simulated',
        logLevel: 'silent',
        simulated: { ttftMs: 1, tokensPerSecond: 5000, answerTokens: 8 },
      },
      env: {},
    });
    const logger = createLogger({ level: 'silent', format: 'json' });
    const inner = createEngine(config, logger);
    // Count what reaches the engine: a cache hit must not.
    const engine: Engine = { ...inner, generate: (req, signal) => (generations++, inner.generate(req, signal)) };
    server = await createServer(config, { logger, engine });
    await server.engineStarted;
    url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(() => server.close());

  const chat = (body: Record<string, unknown>, image = png) =>
    fetch(url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: `data:image/png;base64,${image.toString('base64')}` } },
              { type: 'text', text: 'What colour is it?' },
            ],
          },
        ],
        ...body,
      }),
    });

  test('a temperature-0 request misses, the same request then hits without reaching the engine', async () => {
    const before = generations;
    const first = await chat({ temperature: 0 });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-glimpse-cache'), 'miss');
    const a = await first.json();
    const second = await chat({ temperature: 0 });
    assert.equal(second.headers.get('x-glimpse-cache'), 'hit');
    const b = await second.json();
    assert.equal(b.choices[0].message.content, a.choices[0].message.content);
    assert.deepEqual(b.usage, a.usage);
    assert.equal(generations, before + 1);
  });

  test('the same pixels sent as a different encoding hit the same entry', async () => {
    const lossless = await sharp(png).webp({ lossless: true }).toBuffer();
    await (await chat({ temperature: 0, max_tokens: 7 })).text();
    const res = await chat({ temperature: 0, max_tokens: 7 }, lossless);
    assert.equal(res.headers.get('x-glimpse-cache'), 'hit');
    await res.text();
  });

  test('a sampling request bypasses the cache every time', async () => {
    const before = generations;
    for (let i = 0; i < 2; i++) {
      const res = await chat({ temperature: 0.8 });
      assert.equal(res.headers.get('x-glimpse-cache'), 'bypass');
      await res.text();
    }
    assert.equal(generations, before + 2);
  });

  test('a streamed request carries the header and a hit replays the same text over SSE', async () => {
    const read = async (res: Response) => {
      const text = await res.text();
      return text
        .split('\n')
        .filter((l) => l.startsWith('data: {'))
        .map((l) => JSON.parse(l.slice(6)).choices?.[0]?.delta?.content ?? '')
        .join('');
    };
    const first = await chat({ temperature: 0, stream: true, seed: 5 });
    assert.equal(first.headers.get('x-glimpse-cache'), 'miss');
    const a = await read(first);
    const second = await chat({ temperature: 0, stream: true, seed: 5 });
    assert.equal(second.headers.get('x-glimpse-cache'), 'hit');
    assert.equal(await read(second), a);
    assert.ok(a.length > 0);
  });

  test('/infer (multipart) with temperature 0 is cached like every other shape', async () => {
    const send = async () => {
      const form = new FormData();
      form.append('image', new Blob([png], { type: 'image/png' }), 'x.png');
      form.append('prompt', 'Describe it');
      form.append('temperature', '0');
      return fetch(url + '/infer', { method: 'POST', body: form });
    };
    const first = await send();
    assert.equal(first.headers.get('x-glimpse-cache'), 'miss');
    const a = await first.json();
    const second = await send();
    assert.equal(second.headers.get('x-glimpse-cache'), 'hit');
    assert.equal((await second.json()).result, a.result);
  });
});
