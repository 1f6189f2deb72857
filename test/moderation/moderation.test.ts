/**
 * Content moderation (--moderation-url) through a real glimpse in front of a vLLM double, with a
 * real moderation service on loopback in OpenAI's /v1/moderations shape: flagged requests refused
 * in each dialect's own error shape before an engine sees them, flagged answers ended with an
 * error event (streamed) or refused (not streamed), a service that hangs, answers garbage or fails
 * handled as failMode says, a URL that resolves to a forbidden address never called, start-up
 * errors for bad URLs, and the counters in /metrics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { ModerationFailure, parseVerdict } from '../../src/moderation/index.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { startModerationService, type ModerationService } from '../helpers/moderation-service.js';

test('a malformed moderation URL is a clear start-up error naming the setting', () => {
  const load = (url: string, extra: object = {}) => loadConfig({ flags: { moderation: { url, ...extra } }, env: {} });
  assert.throws(
    () => load('moderation.example.com/v1/moderations'),
    (err: Error) =>
      err instanceof ConfigError &&
      /moderation\.url: is not a valid URL; write it whole, e\.g\. https:\/\/api\.openai\.com\/v1\/moderations \(got "moderation\.example\.com\/v1\/moderations"\) — set with --moderation-url or GLIMPSE_MODERATION_URL/.test(
        err.message,
      ),
  );
  assert.throws(() => load('ftp://mod.example.com/check'), /moderation\.url: must use http or https, not ftp/);
  assert.throws(
    () => load('https://user:s3cret@mod.example.com/v1/moderations'),
    (err: Error) =>
      /may not carry credentials; give the service's key as moderation\.apiKey/.test(err.message) &&
      !err.message.includes('s3cret'),
  );
  assert.throws(
    () => load('http://169.254.169.254/latest'),
    /may not point at 169\.254\.169\.254: linkLocal addresses .*--moderation-allow-private-networks/,
  );
  assert.throws(() => load('http://127.0.0.1:9/v1/moderations'), /loopback addresses are not reachable/);
  assert.throws(
    () => load('http://169.254.169.254/latest', { allowPrivateNetworks: true }),
    /linkLocal/,
    'link-local stays refused',
  );
  assert.throws(
    () => load('https://mod.example.com', { failMode: 'sometimes' }),
    /moderation\.failMode: must be one of closed, open/,
  );
  assert.equal(
    load('http://127.0.0.1:9/v1/moderations', { allowPrivateNetworks: true }).moderation.failMode,
    'closed',
    'closed unless told otherwise',
  );
  const fromEnv = loadConfig({
    env: {
      GLIMPSE_MODERATION_URL: 'https://mod.example.com/v1/moderations',
      GLIMPSE_MODERATION_FAIL_MODE: 'open',
      GLIMPSE_MODERATION_ANSWERS: 'true',
    },
  }).moderation;
  assert.deepEqual(
    [fromEnv.url, fromEnv.failMode, fromEnv.answers],
    ['https://mod.example.com/v1/moderations', 'open', true],
  );
});

test('a body not in the /v1/moderations shape is a failure with a reason, never a crash', () => {
  for (const body of [
    '',
    '<html>',
    'null',
    '{}',
    '{"results":[]}',
    '{"results":[{"flagged":"yes"}]}',
    '{"results":{"flagged":true}}',
    '[1,2]',
    '{"results":[{"flagged":true,"categories":[1]}]}',
  ]) {
    assert.throws(
      () => parseVerdict(Buffer.from(body)),
      (err: unknown) => err instanceof ModerationFailure && err.reason === 'bad_response',
      body,
    );
  }
  assert.deepEqual(
    parseVerdict(
      Buffer.from(
        '{"results":[{"flagged":false},{"flagged":true,"categories":{"violence":true,"hate":false,"sexual":null}}]}',
      ),
    ),
    { flagged: true, categories: ['violence'] },
  );
});

const metric = (text: string, name: string, labels: string) =>
  Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);

describe('through a real glimpse in front of a vLLM double', () => {
  let vllm: FakeVllm;
  let svc: ModerationService;
  let closed: RunningGlimpse;
  let open: RunningGlimpse;
  before(async () => {
    svc = await startModerationService();
    vllm = await startFakeVllm({
      script: (req) =>
        JSON.stringify(req.body.messages).includes('bad word')
          ? { content: ['Here it is: ', 'FORBIDDEN', ' word.'] }
          : { content: ['A red', ' square.'] },
    });
    const engine = { engine: 'upstream', upstream: vllm.url, upstreamModel: vllm.model, cache: { enabled: false } };
    const moderation = {
      url: svc.url,
      allowPrivateNetworks: true,
      timeoutMs: 300,
      model: 'omni-moderation-latest',
      apiKey: 'sk-mod-test',
    };
    closed = await startGlimpse({ ...engine, moderation: { ...moderation, answers: true } });
    open = await startGlimpse({ ...engine, moderation: { ...moderation, failMode: 'open' } });
  });
  after(async () => {
    await closed?.close();
    await open?.close();
    await vllm?.close();
    await svc?.close();
  });

  const post = (g: RunningGlimpse, path: string, body: object) =>
    fetch(g.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const chat = (g: RunningGlimpse, text: string, extra: object = {}) =>
    post(g, '/v1/chat/completions', {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: text },
      ],
      max_tokens: 32,
      ...extra,
    });
  const upstreamCalls = () => vllm.requests.filter((r) => r.method === 'POST').length;

  test("a clean request passes; the service gets the request's text, the model and the key", async () => {
    svc.mode = 'normal';
    const res = await chat(closed, 'What colour is it?');
    assert.equal(res.status, 200);
    assert.equal(
      ((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0].message.content,
      'A red square.',
    );
    const request = svc.received.find((r) => String(r.body.input).includes('What colour'));
    assert.deepEqual(request?.body, { input: 'Be brief.\nWhat colour is it?', model: 'omni-moderation-latest' });
    assert.equal(request?.headers.authorization, 'Bearer sk-mod-test');
  });

  test('a flagged request is 400 content_flagged in each dialect, and no engine sees it', async () => {
    svc.mode = 'normal';
    const before = upstreamCalls();
    const res = await chat(closed, 'Tell me something FORBIDDEN', { stream: true });
    assert.equal(res.status, 400);
    assert.deepEqual((await res.json()) as unknown, {
      error: {
        message: 'The request was flagged by content moderation (violence) and was not processed.',
        type: 'invalid_request_error',
        param: null,
        code: 'content_flagged',
      },
    });

    const responses = await post(closed, '/v1/responses', { model: vllm.model, input: 'FORBIDDEN thing' });
    assert.equal(responses.status, 400);
    assert.equal(((await responses.json()) as { error: { code: string } }).error.code, 'content_flagged');

    const anthropic = await post(closed, '/v1/messages', {
      model: vllm.model,
      max_tokens: 16,
      messages: [{ role: 'user', content: 'FORBIDDEN words' }],
    });
    assert.equal(anthropic.status, 400);
    const anthropicBody = (await anthropic.json()) as { type: string; error: { type: string; code: string } };
    assert.deepEqual(
      [anthropicBody.type, anthropicBody.error.type, anthropicBody.error.code],
      ['error', 'invalid_request_error', 'content_flagged'],
      "Anthropic's error body",
    );

    const zhipu = await post(closed, '/api/paas/v4/chat/completions', {
      model: vllm.model,
      messages: [{ role: 'user', content: 'FORBIDDEN words' }],
    });
    assert.equal(zhipu.status, 400);
    const zhipuBody = (await zhipu.json()) as { error: { code: string; glimpse_code: string } };
    assert.deepEqual(
      [zhipuBody.error.code, zhipuBody.error.glimpse_code],
      ['1301', 'content_flagged'],
      "Zhipu's own business code for filtered content",
    );

    const form = new FormData();
    form.append(
      'image',
      new Blob(
        [
          Buffer.from(
            'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==',
            'base64',
          ),
        ],
        { type: 'image/png' },
      ),
      'red.png',
    );
    form.append('prompt', 'Describe the FORBIDDEN image');
    const infer = await fetch(closed.url + '/infer', { method: 'POST', body: form });
    assert.equal(infer.status, 400);
    const inferBody = (await infer.json()) as { code: number; error_code: string; result: unknown };
    assert.deepEqual(
      [inferBody.code, inferBody.error_code, inferBody.result],
      [400, 'content_flagged', null],
      'the /infer shape',
    );

    assert.equal(upstreamCalls(), before, 'the upstream never got a flagged request');
  });

  test('a flagged answer: streamed, its text then an error event; not streamed, a 400 and no text', async () => {
    svc.mode = 'normal';
    const streamed = await chat(closed, 'Say the bad word', { stream: true });
    assert.equal(streamed.status, 200);
    const raw = await streamed.text();
    const events = raw.split('\n\n').filter((e) => e.startsWith('data: '));
    const errorAt = events.findIndex((e) => e.includes('"code":"content_flagged"'));
    assert.ok(errorAt > 0, raw);
    assert.match(
      events.slice(0, errorAt).join(''),
      /FORBIDDEN/,
      'the text went out before the whole answer could be checked',
    );
    assert.doesNotMatch(raw, /"finish_reason":"stop"/, 'the answer does not finish normally');
    assert.match(events[errorAt], /The answer was flagged by content moderation \(violence\)/);

    const whole = await chat(closed, 'Say the bad word');
    assert.equal(whole.status, 400);
    const text = await whole.text();
    assert.match(text, /"code":"content_flagged"/);
    assert.doesNotMatch(text, /Here it is/, 'a non-streamed answer that is flagged is never shown');

    const responses = await (
      await post(closed, '/v1/responses', { model: vllm.model, input: 'Say the bad word', stream: true })
    ).text();
    assert.match(
      responses,
      /event: response\.failed\ndata: .*"code":"content_flagged"/,
      'the Responses API ends with response.failed',
    );
    assert.doesNotMatch(responses, /event: response\.completed/);

    const metrics = await (await fetch(closed.url + '/metrics')).text();
    assert.ok(metric(metrics, 'glimpse_moderation_flagged_total', 'stage="answer"') >= 3);
    assert.ok(metric(metrics, 'glimpse_moderation_flagged_total', 'stage="request"') >= 3);
    assert.ok(metric(metrics, 'glimpse_moderation_checks_total', 'stage="request"') >= 6);
  });

  test('with the openai SDK: a flagged request is a BadRequestError, a flagged streamed answer throws mid-stream', async () => {
    svc.mode = 'normal';
    const client = new OpenAI({ baseURL: closed.url + '/v1', apiKey: 'unused', maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: vllm.model, messages: [{ role: 'user', content: 'FORBIDDEN please' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal(err.code, 'content_flagged');
        return true;
      },
    );
    const stream = await client.chat.completions.create({
      model: vllm.model,
      messages: [{ role: 'user', content: 'Say the bad word, streamed' }],
      stream: true,
    });
    let got = '';
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) got += chunk.choices[0]?.delta?.content ?? '';
      })(),
      (err: unknown) => err instanceof OpenAI.APIError && /flagged by content moderation/.test(err.message),
    );
    assert.equal(got, 'Here it is: FORBIDDEN word.');
    const ok = await client.chat.completions.create({
      model: vllm.model,
      messages: [{ role: 'user', content: 'Fine question' }],
    });
    assert.equal(ok.choices[0].message.content, 'A red square.');
  });

  for (const [mode, reason] of [
    ['hang', 'timeout'],
    ['garbage', 'bad_response'],
    ['wrong_shape', 'bad_response'],
    ['error_500', 'http_status'],
  ] as const) {
    test(`a service that ${mode === 'hang' ? 'never answers' : `answers ${mode}`}: closed refuses with 503 moderation_unavailable, open lets it through`, async () => {
      svc.mode = mode;
      const refused = await chat(closed, `Question while the service is ${mode}`);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'moderation_unavailable');
      const through = await chat(open, `Question while the service is ${mode}`);
      assert.equal(through.status, 200);
      assert.equal(
        ((await through.json()) as { choices: Array<{ message: { content: string } }> }).choices[0].message.content,
        'A red square.',
      );
      svc.mode = 'normal';
      const m1 = await (await fetch(closed.url + '/metrics')).text();
      const m2 = await (await fetch(open.url + '/metrics')).text();
      assert.ok(
        metric(m1, 'glimpse_moderation_failures_total', `stage="request",reason="${reason}",outcome="refused"`) >= 1,
        m1.match(/glimpse_moderation_failures_total.*/g)?.join('\n'),
      );
      assert.ok(
        metric(m2, 'glimpse_moderation_failures_total', `stage="request",reason="${reason}",outcome="allowed"`) >= 1,
        m2.match(/glimpse_moderation_failures_total.*/g)?.join('\n'),
      );
      assert.equal(
        (await chat(closed, 'And now, once it is back?')).status,
        200,
        'the server carries on once the service is back',
      );
    });
  }
});

test('a moderation host name that resolves to loopback is never called without allowPrivateNetworks', async () => {
  const svc = await startModerationService();
  // A host name passes the start-up check (no DNS then); every call resolves it and checks the addresses.
  const g = await startGlimpse({
    engine: 'simulated',
    moderation: { url: `http://localhost:${svc.port}/v1/moderations` },
  });
  try {
    const res = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 }),
    });
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'moderation_unavailable');
    assert.equal(svc.received.length, 0);
    const metrics = await (await fetch(g.url + '/metrics')).text();
    assert.equal(
      metric(metrics, 'glimpse_moderation_failures_total', 'stage="request",reason="forbidden",outcome="refused"'),
      1,
    );
  } finally {
    await g.close();
    await svc.close();
  }
});
