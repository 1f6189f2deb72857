import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSseData, SseDataParser } from '../../src/engines/upstream/sse-parse.js';

async function collect(chunks: string[]): Promise<string[]> {
  async function* gen() {
    for (const c of chunks) yield new TextEncoder().encode(c);
  }
  const out: string[] = [];
  for await (const d of parseSseData(gen())) out.push(d);
  return out;
}

test('events split at every byte boundary parse the same', async () => {
  const stream = 'data: {"a":1}\n\n: comment\n\ndata: {"b":"x y"}\n\ndata: [DONE]\n\n';
  const whole = await collect([stream]);
  assert.deepEqual(whole, ['{"a":1}', '{"b":"x y"}', '[DONE]']);
  for (let i = 1; i < stream.length; i++)
    assert.deepEqual(await collect([stream.slice(0, i), stream.slice(i)]), whole, `split at ${i}`);
});

test('CRLF line endings, multi-line data and a missing space after the colon', async () => {
  assert.deepEqual(await collect(['data:one\r\ndata: two\r\n\r\nevent: x\r\ndata: three\r\n\r\n']), [
    'one\ntwo',
    'three',
  ]);
});

test('a multi-byte character split across chunks survives', async () => {
  const bytes = new TextEncoder().encode('data: 你好\n\n');
  async function* gen() {
    yield bytes.slice(0, 8);
    yield bytes.slice(8);
  }
  const out: string[] = [];
  for await (const d of parseSseData(gen())) out.push(d);
  assert.deepEqual(out, ['你好']);
});

test('a last event without the blank line is still delivered', async () => {
  assert.deepEqual(await collect(['data: tail']), ['tail']);
});

test('CRLF and lone CR line ends split at every byte boundary parse the same', async () => {
  for (const eol of ['\r\n', '\r']) {
    const stream = `data: {"a":1}${eol}${eol}: c${eol}data: x${eol}data: y${eol}${eol}data: [DONE]${eol}${eol}`;
    const whole = await collect([stream]);
    assert.deepEqual(whole, ['{"a":1}', 'x\ny', '[DONE]'], JSON.stringify(eol));
    for (let i = 1; i < stream.length; i++)
      assert.deepEqual(
        await collect([stream.slice(0, i), stream.slice(i)]),
        whole,
        `${JSON.stringify(eol)} split at ${i}`,
      );
  }
});

test('SseDataParser: each chunk gives the events it completed, end() the rest', () => {
  const p = new SseDataParser();
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.deepEqual(p.push(enc('data: a\n\ndata: b\n')), ['a']);
  assert.deepEqual(p.push(enc('\ndata: c')), ['b']);
  assert.deepEqual(p.end(), ['c']);
  assert.deepEqual(p.end(), []);
});
