/**
 * Zhipu's dialect at /api/paas/v4/chat/completions with Zhipu's own clients: its Node SDK
 * (zhipuai-sdk-nodejs-v4, signing an HS256 JWT from an `id.secret` key, sent with no scheme) and
 * its AI SDK provider (zhipu-ai-provider, the raw key as Bearer), streamed and whole, with a
 * bare-base64 image; do_sample, request_id, user_id and thinking reach the request; bad JWTs
 * (signature, expired, another key's id) and bad bodies get Zhipu's error body and codes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { ZhipuAI } from 'zhipuai-sdk-nodejs-v4';
import { createZhipu } from 'zhipu-ai-provider';
import { generateText, streamText } from 'ai';
import { upstreamSuite } from '../helpers/upstream-suite.js';
import { RED_PIXEL_PNG } from '../helpers/glimpse.js';

const BARE_BASE64 = RED_PIXEL_PNG.slice('data:image/png;base64,'.length);
const KEY = 'zhipu-id-1.zhipu-secret-abc';
const imageMessage = [
  {
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url: BARE_BASE64 } },
      { type: 'text', text: 'What is this?' },
    ],
  },
];

const sign = (payload: Record<string, unknown>, secret = 'zhipu-secret-abc') =>
  new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', sign_type: 'SIGN' } as never)
    .sign(new TextEncoder().encode(secret));

describe("Zhipu's dialect with Zhipu's clients", () => {
  const suite = upstreamSuite(
    { before, after },
    { cache: { enabled: false }, apiKeys: [`zhipu-user:${KEY}`, 'other:other-key-7777'] },
  );
  const base = () => suite.glimpse.url + '/api/paas/v4';
  const post = (body: unknown, authorization: string) =>
    fetch(base() + '/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify(body),
    });

  test("Zhipu's Node SDK (JWT from id.secret): whole, with a bare-base64 image; do_sample, request_id reach the request", async () => {
    suite.script = { reasoning: ['Red.'], content: ['A red', ' square.'] };
    const client = new ZhipuAI({ apiKey: KEY, baseUrl: base() });
    const res = (await client.createCompletions({
      model: 'glm-4.6v-flash',
      messages: imageMessage as never,
      doSample: false,
      requestId: 'req-zhipu-0001',
      maxTokens: 64,
      stream: false,
    })) as any;
    assert.equal(res.choices[0].message.content, 'A red square.');
    assert.equal(res.choices[0].message.reasoning_content, 'Red.');
    assert.equal(res.request_id, 'req-zhipu-0001');
    assert.equal(res.choices[0].finish_reason, 'stop');
    const sent = suite.vllm.lastChatBody();
    assert.equal(sent.temperature, 0, 'do_sample false is greedy');
    assert.equal(sent.messages[0].content[0].type, 'image_url');
    assert.equal(suite.vllm.requests.at(-1)!.headers['x-request-id'], 'req-zhipu-0001');
  });

  test("Zhipu's Node SDK streams: reasoning and content deltas, usage on the finishing chunk, [DONE]", async () => {
    suite.script = { reasoning: ['Hm.'], content: ['A', ' cat.'] };
    const client = new ZhipuAI({ apiKey: KEY, baseUrl: base() });
    const stream = (await client.createCompletions({
      model: 'glm-4.6v-flash',
      messages: imageMessage as never,
      stream: true,
    })) as unknown as AsyncIterable<Buffer>;
    let raw = '';
    for await (const piece of stream) raw += piece.toString();
    const data = raw
      .trim()
      .split('\n\n')
      .map((f) => f.replace(/^data: /, ''));
    assert.equal(data.at(-1), '[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'A cat.');
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.reasoning_content ?? '').join(''), 'Hm.');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
    assert.equal(chunks.at(-1).usage.prompt_tokens, 42);
  });

  test('zhipu-ai-provider (raw key as Bearer) with the AI SDK: generateText and streamText; thinking and user_id pass', async () => {
    suite.script = { reasoning: ['Red.'], content: ['A red', ' square.'] };
    const zhipu = createZhipu({ baseURL: base(), apiKey: KEY });
    const model = zhipu('glm-4.6v-flash', { thinking: { type: 'disabled' }, userId: 'end-user-42' });
    const whole = await generateText({
      model,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', image: RED_PIXEL_PNG },
            { type: 'text', text: 'What is this?' },
          ],
        },
      ],
    });
    assert.equal(whole.text, 'A red square.');
    assert.equal(suite.vllm.lastChatBody().chat_template_kwargs?.enable_thinking, false);
    const streamed = streamText({ model, prompt: 'Describe it.' });
    let text = '';
    for await (const t of streamed.textStream) text += t;
    assert.equal(text, 'A red square.');
  });

  test("bad tokens and bodies: Zhipu's error body, its business codes, glimpse's stable code", async () => {
    const now = Date.now();
    const cases: Array<[string, unknown, number, string, string]> = [
      [
        await sign({ api_key: 'zhipu-id-1', exp: now + 60_000, timestamp: now }, 'wrong-secret'),
        {},
        401,
        '1002',
        'invalid_token',
      ],
      [
        await sign({ api_key: 'zhipu-id-1', exp: now - 120_000, timestamp: now - 180_000 }),
        {},
        401,
        '1003',
        'token_expired',
      ],
      [await sign({ api_key: 'nobody', exp: now + 60_000, timestamp: now }), {}, 401, '1002', 'invalid_token'],
      [await sign({ api_key: 'zhipu-id-1', exp: now + 86_400_000, timestamp: now }), {}, 401, '1002', 'invalid_token'],
      [`Bearer ${KEY}`, { messages: [] }, 400, '1214', 'empty_messages'],
      [
        `Bearer ${KEY}`,
        { messages: [{ role: 'user', content: 'hi' }], request_id: 'a b' },
        400,
        '1214',
        'invalid_request',
      ],
      [
        `Bearer ${KEY}`,
        { model: 'gpt-9', messages: [{ role: 'user', content: 'hi' }] },
        400,
        '1211',
        'model_not_found',
      ],
    ];
    for (const [auth, body, status, code, glimpseCode] of cases) {
      const res = await post(
        { messages: [{ role: 'user', content: 'hi' }], ...(body as object) },
        auth.startsWith('Bearer') ? auth : `Bearer ${auth}`,
      );
      const got = (await res.json()) as { error: { code: string; message: string; glimpse_code: string } };
      assert.deepEqual(
        [res.status, got.error.code, got.error.glimpse_code],
        [status, code, glimpseCode],
        `${auth.slice(0, 20)} ${JSON.stringify(body)}: ${got.error.message}`,
      );
    }
    // A token within the clock skew past its exp still passes; the JWT of the Node SDK's microsecond clock too.
    suite.script = { content: ['ok'] };
    assert.equal(
      (
        await post(
          { messages: [{ role: 'user', content: 'hi' }] },
          `Bearer ${await sign({ api_key: 'zhipu-id-1', exp: now - 5_000, timestamp: now - 65_000 })}`,
        )
      ).status,
      200,
    );
    assert.equal(
      (
        await post(
          { messages: [{ role: 'user', content: 'hi' }] },
          await sign({ api_key: 'zhipu-id-1', exp: now * 1000 + 180_000, timestamp: now * 1000 }),
        )
      ).status,
      200,
    );
  });
});
