/**
 * PII masking (--redact): the detectors (ID check digit, Luhn, mobile numbers, e-mail), no false
 * positives on ordinary numbers, stream safety (a number split across pieces is still masked, and
 * only the shortest tail that could still become a match is held back), and end to end through a
 * real glimpse in front of a vLLM double: streamed and not, prompts masked before the upstream,
 * counted in /metrics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { luhn, maskText, PII_KINDS, StreamMasker, validIdNumber, type PiiKind } from '../../src/redact/index.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';

const ALL = new Set<PiiKind>(PII_KINDS);
const ID = '11010519491231002X';
const CARD = '6222021234567890128';

test('the validators: ID check digit and birth date, Luhn', () => {
  assert.ok(validIdNumber(ID));
  assert.ok(!validIdNumber('110105194912310021'), 'wrong check digit');
  assert.ok(!validIdNumber('110105194913310027'), 'month 13');
  assert.ok(luhn(CARD) && luhn('4111111111111111'));
  assert.ok(!luhn('6222021234567890127'));
});

test('each kind is masked as specified', () => {
  assert.equal(maskText(`身份证 ${ID}。`, ALL), '身份证 110105********002X。');
  assert.equal(maskText(`卡号${CARD}`, ALL), '卡号622202*********0128');
  assert.equal(maskText('card 4111 1111 1111 1111 ok', ALL), 'card 411111******1111 ok');
  assert.equal(
    maskText('电话13800138000，或 +86 139-1234-5678', ALL),
    '电话138****8000，或 +86 139-1234-5678',
    'a phone split by hyphens is not one we claim to find',
  );
  assert.equal(maskText('call +8613912345678 now', ALL), 'call +86139****5678 now');
  assert.equal(maskText('write to zhang.san@example.com.cn.', ALL), 'write to z***@example.com.cn.');
  assert.equal(
    maskText(`${ID} 13800138000`, new Set<PiiKind>(['phone'])),
    `${ID} 138****8000`,
    'only the kinds asked for',
  );
});

test('no false positives on ordinary numbers', () => {
  const ordinary = [
    'The price is ¥12,999.00 (was 15999), 3 items at 299.5 each.',
    'Dated 2024-03-15 and 2024/03/15, at 13:45:00, timestamp 1710488700123.',
    'Order 20240315123456789 shipped; tracking SF1234567890123; invoice 4400123456789012.',
    '订单号 202403151234567890，金额 1380 元，数量 13800138，编号 1380013800。',
    'Version 1.13.800138000 and 2.0.0-rc.1; an 18-digit serial 110105194912310021.',
    'Build 12345678901234567890123 and user@localhost are not findings.',
  ];
  for (const text of ordinary) assert.equal(maskText(text, ALL), text, text);
});

/** Feed pieces through a masker; what came out after each piece, and after the end. */
function stream(pieces: string[], kinds = ALL): { outs: string[]; all: string } {
  const m = new StreamMasker(kinds);
  const outs = pieces.map((p) => m.push(p));
  outs.push(m.flush());
  return { outs, all: outs.join('') };
}

test('numbers split across pieces are masked, and the text around them is not held', () => {
  const { outs, all } = stream(['身份证号是1101', '0519491231', '002X，电话138', '0013', '8000。好的']);
  assert.equal(all, '身份证号是110105********002X，电话138****8000。好的');
  assert.equal(outs[0], '身份证号是', 'the text before the digits goes out at once');
  assert.equal(outs[1], '', 'a run of digits that could still be an ID waits');
  assert.equal(outs[2], '110105********002X，电话', 'decided once a non-digit follows');
  assert.equal(outs[4], '138****8000。好的', 'Chinese text after a number is never held');
  // Every possible split of one text gives the same result as masking it whole.
  const text = `ID ${ID}, card ${CARD}, phone 13800138000, mail a.b@example.org; price 12.50.`;
  for (let i = 1; i < text.length; i++)
    assert.equal(stream([text.slice(0, i), text.slice(i)]).all, maskText(text, ALL), `split at ${i}`);
  assert.equal(stream([...text]).all, maskText(text, ALL), 'one character at a time');
});

test('only the shortest tail that could still become a match is held', () => {
  const numbers = new Set<PiiKind>(['id_card', 'bank_card', 'phone']);
  assert.deepEqual(stream(['The answer is 42', '.'], numbers).outs, ['The answer is ', '42.', '']);
  assert.deepEqual(
    stream(['The answer is 42', '.', ' Yes']).outs,
    ['The answer is ', '', '42. ', 'Yes'],
    'with e-mails, "42." could still start one',
  );
  assert.deepEqual(
    stream(['没有数字的中文回答，', '第二句。']).outs,
    ['没有数字的中文回答，', '第二句。', ''],
    'no digits: nothing held',
  );
  // 20 digits can never become a match: they go out at once.
  assert.deepEqual(stream(['x 12345678901234567890', '1'], numbers).outs, ['x 12345678901234567890', '1', '']);
  // Without e-mail masking, words are not held; with it, only the last word is.
  assert.deepEqual(stream(['hello world', ' again'], new Set<PiiKind>(['phone'])).outs, ['hello world', ' again', '']);
  assert.deepEqual(stream(['hello world', ' again'], new Set<PiiKind>(['email'])).outs, ['hello ', 'world ', 'again']);
});

test('an unknown kind in --redact is a start-up error listing the kinds', () => {
  assert.throws(
    () => loadConfig({ flags: { redact: 'phone,passport' }, env: {} }),
    (err: Error) =>
      err instanceof ConfigError &&
      /redact\.1: must be one of pii, id_card, bank_card, phone, email \(got "passport"\) — set with --redact/.test(
        err.message,
      ),
  );
  assert.deepEqual(loadConfig({ flags: { redact: 'pii' }, env: {} }).redact, ['pii']);
});

describe('through a real glimpse in front of a vLLM double', () => {
  let vllm: FakeVllm;
  let g: RunningGlimpse;
  before(async () => {
    vllm = await startFakeVllm({
      script: () => ({
        reasoning: ['The card ', '6222 0212 3456 7890 128', ' is visible.'],
        content: ['证件号码', '1101051949', '1231002X', '，手机', '1380013', '8000', '。'],
        delayMs: 2,
      }),
    });
    g = await startGlimpse({
      engine: 'upstream',
      upstream: vllm.url,
      upstreamModel: vllm.model,
      redact: ['pii'],
      redactPrompts: true,
    });
  });
  after(async () => {
    await g?.close();
    await vllm?.close();
  });

  const post = (body: object) =>
    fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [{ role: 'user', content: `my phone is 13912345678, read the card` }],
        max_tokens: 64,
        ...body,
      }),
    });

  test('a streamed answer never carries the numbers, even split across chunks', async () => {
    const raw = await (await post({ stream: true })).text();
    let content = '';
    let reasoning = '';
    for (const line of raw.split('\n')) {
      if (!line.startsWith('data: {')) continue;
      const delta = (
        JSON.parse(line.slice(6)) as { choices: Array<{ delta?: { content?: string; reasoning_content?: string } }> }
      ).choices[0]?.delta;
      content += delta?.content ?? '';
      reasoning += delta?.reasoning_content ?? '';
    }
    assert.equal(content, '证件号码110105********002X，手机138****8000。');
    assert.equal(reasoning, 'The card 622202*********0128 is visible.');
    assert.doesNotMatch(raw, /1231002X|00138000|7890 128/);
  });

  test('a non-streamed answer is masked the same way', async () => {
    const body = (await (await post({ stream: false })).json()) as { choices: Array<{ message: { content: string } }> };
    assert.equal(body.choices[0]!.message.content, '证件号码110105********002X，手机138****8000。');
  });

  test('the prompt is masked before the upstream sees it, and /metrics counts both sides', async () => {
    const seen = JSON.stringify(vllm.requests.at(-1)?.body);
    assert.match(seen, /139\*\*\*\*5678/);
    assert.doesNotMatch(seen, /13912345678/);
    const metrics = await (await fetch(g.url + '/metrics')).text();
    const count = (kind: string, where: string) =>
      Number(new RegExp(`glimpse_redactions_total\\{kind="${kind}",where="${where}"\\} (\\d+)`).exec(metrics)?.[1]);
    assert.ok(
      count('id_card', 'answer') >= 2 && count('phone', 'answer') >= 2 && count('bank_card', 'answer') >= 1,
      metrics.match(/glimpse_redactions_total.*/g)?.join('\n'),
    );
    assert.ok(count('phone', 'prompt') >= 1);
    assert.equal(count('email', 'answer'), 0, 'kinds not seen are exported at 0');
  });
});
