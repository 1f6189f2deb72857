import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { createServer } from '../../src/server/index.js';

/** The remote address glimpse logs for one request from 127.0.0.1 that says it forwards 203.0.113.9. */
async function loggedClient(flags: Record<string, unknown>): Promise<string> {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const server = await createServer(loadConfig({ flags: { port: 0, engine: 'simulated', ...flags }, env: {} }), {
    logger,
  });
  try {
    const res = await server.app.inject({
      method: 'GET',
      url: '/health',
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    assert.equal(res.statusCode, 200);
    const incoming = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'incoming request');
    assert.ok(incoming, 'fastify logs each incoming request');
    return incoming.req.remoteAddress;
  } finally {
    await server.close();
  }
}

test('behind a trusted proxy (--trust-proxy 127.0.0.1) logs name the client from X-Forwarded-For', async () => {
  assert.equal(await loggedClient({ trustProxy: '127.0.0.1,::1' }), '203.0.113.9');
});

test('without --trust-proxy, X-Forwarded-For is not believed (any client could forge it)', async () => {
  assert.equal(await loggedClient({}), '127.0.0.1');
});

test('a proxy not on the list is not believed either', async () => {
  assert.equal(await loggedClient({ trustProxy: '10.0.0.0/8' }), '127.0.0.1');
});
