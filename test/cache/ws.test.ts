import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { startGlimpse, RED_PIXEL_PNG } from '../helpers/glimpse.js';

type Msg = { type: string; id?: string; cache?: string; text?: string };

test('WS /ws/infer says in its start message whether the answer came from the cache', async (t) => {
  const g = await startGlimpse({
    engine: 'simulated',
    simulated: { ttftMs: 0, tokensPerSecond: 10000, answerTokens: 4 },
  });
  t.after(() => g.close());
  const ws = new WebSocket(g.url.replace('http', 'ws') + '/ws/infer');
  t.after(() => ws.close());
  const messages: Msg[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Msg));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const run = async (id: string, temperature: number) => {
    ws.send(JSON.stringify({ type: 'request', id, prompt: 'ws cache?', image: RED_PIXEL_PNG, temperature }));
    for (let i = 0; i < 300 && !messages.some((m) => m.id === id && (m.type === 'done' || m.type === 'error')); i++)
      await new Promise((r) => setTimeout(r, 10));
    const mine = messages.filter((m) => m.id === id);
    assert.equal(mine.at(-1)?.type, 'done', JSON.stringify(mine));
    return {
      cache: mine.find((m) => m.type === 'start')?.cache,
      text: mine
        .filter((m) => m.type === 'token')
        .map((m) => m.text)
        .join(''),
    };
  };
  const first = await run('a', 0);
  assert.equal(first.cache, 'miss');
  const second = await run('b', 0);
  assert.equal(second.cache, 'hit');
  assert.equal(second.text, first.text);
  assert.equal((await run('c', 0.9)).cache, 'bypass');
});
