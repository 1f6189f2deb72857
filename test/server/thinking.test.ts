/**
 * Turning GLM's thinking on or off. Clients say it three ways (Zhipu's thinking.type, OpenAI's
 * reasoning_effort, vLLM's chat_template_kwargs.enable_thinking); glimpse reads one answer from
 * them and passes it to upstream servers both as vLLM/SGLang read it and as Zhipu's API does, with
 * any other chat template variables the client sent. The vLLM double drops reasoning when
 * enable_thinking is false, as GLM's template does. (The embedded engine's side:
 * test/embedded/template-args.test.ts.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { upstreamSuite } from '../helpers/upstream-suite.js';

const question = [{ role: 'user' as const, content: 'What is in the picture?' }];

describe('thinking on the upstream engine', () => {
  const suite = upstreamSuite({ before, after });
  const post = (path: string, body: object) =>
    fetch(suite.glimpse.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const chat = (extra: object) => post('/v1/chat/completions', { messages: question, max_tokens: 16, ...extra });
  type Sent = { chat_template_kwargs?: Record<string, unknown>; thinking?: { type: string } };
  const sent = () => suite.vllm.lastChatBody() as Sent;

  test('a client that does not choose sends neither field, and the model thinks as it does by default', async () => {
    suite.script = { reasoning: ['Looking', ' closely.'], content: ['A cat.'] };
    const answer = await suite.client.chat.completions.create({ model: 'glm-4.6v-flash', messages: question });
    assert.equal('chat_template_kwargs' in sent(), false);
    assert.equal('thinking' in sent(), false);
    assert.equal((answer.choices[0]!.message as { reasoning_content?: string }).reasoning_content, 'Looking closely.');
  });

  test("thinking: {type: 'disabled'} reaches vLLM as enable_thinking=false and Zhipu's API as thinking.type, and the answer has no reasoning", async () => {
    suite.script = { reasoning: ['Looking', ' closely.'], content: ['A cat.'] };
    const answer = await suite.client.chat.completions.create({
      model: 'glm-4.6v-flash',
      messages: question,
      thinking: { type: 'disabled' },
    } as never);
    assert.deepEqual(sent().chat_template_kwargs, { enable_thinking: false });
    assert.deepEqual(sent().thinking, { type: 'disabled' });
    const message = (answer as { choices: Array<{ message: { content: string; reasoning_content?: string | null } }> })
      .choices[0]!.message;
    assert.equal(message.content, 'A cat.');
    assert.ok(!message.reasoning_content);
  });

  test('chat_template_kwargs passes through whole, enable_thinking included, as vLLM clients send it', async () => {
    const res = await chat({ chat_template_kwargs: { enable_thinking: false, detail_level: 'high', budget: 3 } });
    assert.equal(res.status, 200);
    assert.deepEqual(sent().chat_template_kwargs, { detail_level: 'high', budget: 3, enable_thinking: false });
    assert.deepEqual(sent().thinking, { type: 'disabled' });
  });

  test("reasoning_effort 'none' and 'minimal' turn thinking off; 'low' and 'high' turn it on", async () => {
    for (const [effort, on] of [
      ['none', false],
      ['minimal', false],
      ['low', true],
      ['high', true],
    ] as const) {
      assert.equal((await chat({ reasoning_effort: effort })).status, 200);
      assert.deepEqual(sent().chat_template_kwargs, { enable_thinking: on }, effort);
    }
  });

  test('the Responses API passes reasoning.effort on the same way', async () => {
    const res = await post('/v1/responses', { input: 'What is in the picture?', reasoning: { effort: 'none' } });
    assert.equal(res.status, 200);
    assert.deepEqual(sent().chat_template_kwargs, { enable_thinking: false });
  });

  test('two spellings that disagree are refused with 400 invalid_request naming the second', async () => {
    const cases: Array<[object, string]> = [
      [
        { thinking: { type: 'enabled' }, chat_template_kwargs: { enable_thinking: false } },
        'chat_template_kwargs.enable_thinking',
      ],
      [{ thinking: { type: 'disabled' }, reasoning_effort: 'high' }, 'reasoning_effort'],
    ];
    for (const [extra, param] of cases) {
      const res = await chat(extra);
      assert.equal(res.status, 400);
      const { error } = (await res.json()) as { error: { code: string; param: string; message: string } };
      assert.deepEqual([error.code, error.param], ['invalid_request', param]);
      assert.match(error.message, /disagree/);
    }
    // Spellings that agree are fine.
    assert.equal(
      (
        await chat({
          thinking: { type: 'disabled' },
          reasoning_effort: 'none',
          chat_template_kwargs: { enable_thinking: false },
        })
      ).status,
      200,
    );
  });

  test('template variables the template engine owns, odd names, non-boolean enable_thinking and oversize objects are refused before any upstream call', async () => {
    const before = suite.vllm.requests.length;
    const bad: Array<[object, string]> = [
      [{ chat_template_kwargs: { messages: [] } }, 'chat_template_kwargs'],
      [{ chat_template_kwargs: { add_generation_prompt: false } }, 'chat_template_kwargs'],
      [{ chat_template_kwargs: { chat_template: '{{ 7 * 7 }}' } }, 'chat_template_kwargs'],
      [{ chat_template_kwargs: { eos_token: '' } }, 'chat_template_kwargs'],
      [{ chat_template_kwargs: { 'a-b': 1 } }, 'chat_template_kwargs'],
      [{ chat_template_kwargs: { enable_thinking: 'no' } }, 'chat_template_kwargs.enable_thinking'],
      [{ chat_template_kwargs: { notes: 'x'.repeat(5000) } }, 'chat_template_kwargs'],
      [{ reasoning_effort: 'extreme' }, 'reasoning_effort'],
    ];
    for (const [extra, param] of bad) {
      const res = await chat(extra);
      assert.equal(res.status, 400, JSON.stringify(extra).slice(0, 80));
      const { error } = (await res.json()) as { error: { code: string; param: string } };
      assert.deepEqual([error.code, error.param], ['invalid_request', param], JSON.stringify(extra).slice(0, 80));
    }
    assert.equal(suite.vllm.requests.length, before);
  });

  test('the answer cache tells thinking unset, on and off apart, and keys on template variables', async () => {
    suite.script = { reasoning: ['Hmm.'], content: ['A dog.'] };
    const cache = async (extra: object) =>
      (await chat({ temperature: 0, messages: [{ role: 'user', content: 'Cache me?' }], ...extra })).headers.get(
        'x-glimpse-cache',
      );
    assert.equal(await cache({}), 'miss');
    assert.equal(await cache({}), 'hit');
    assert.equal(await cache({ thinking: { type: 'disabled' } }), 'miss');
    assert.equal(await cache({ thinking: { type: 'enabled' } }), 'miss');
    assert.equal(await cache({ chat_template_kwargs: { enable_thinking: false } }), 'hit');
    assert.equal(await cache({ chat_template_kwargs: { enable_thinking: false, detail_level: 'high' } }), 'miss');
  });
});

describe('--upstream-thinking-param', () => {
  let vllm: Awaited<ReturnType<typeof import('../helpers/fake-vllm.js').startFakeVllm>>;
  const glimpses: RunningGlimpse[] = [];
  before(async () => {
    const { startFakeVllm } = await import('../helpers/fake-vllm.js');
    vllm = await startFakeVllm();
    for (const how of ['chat_template_kwargs', 'thinking', 'none']) {
      glimpses.push(
        await startGlimpse({
          engine: 'upstream',
          upstream: [vllm.url],
          upstreamModel: vllm.model,
          upstreamHealthInterval: 0,
          upstreamThinkingParam: how,
        }),
      );
    }
  });
  after(async () => {
    for (const g of glimpses) await g.close();
    await vllm?.close();
  });

  test('chooses which field carries the choice; other template variables pass whatever it says', async () => {
    const expected = [
      { chat_template_kwargs: { detail_level: 'low', enable_thinking: false } },
      { chat_template_kwargs: { detail_level: 'low' }, thinking: { type: 'disabled' } },
      { chat_template_kwargs: { detail_level: 'low' } },
    ];
    for (const [i, g] of glimpses.entries()) {
      const res = await fetch(g.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          messages: question,
          max_tokens: 8,
          reasoning_effort: 'none',
          chat_template_kwargs: { detail_level: 'low' },
        }),
      });
      assert.equal(res.status, 200);
      const body = vllm.lastChatBody() as Record<string, unknown>;
      assert.deepEqual(
        { chat_template_kwargs: body.chat_template_kwargs, ...('thinking' in body ? { thinking: body.thinking } : {}) },
        expected[i],
      );
    }
  });

  test('a value outside the four is a startup error naming the setting', async () => {
    await assert.rejects(
      startGlimpse({ engine: 'upstream', upstream: [vllm.url], upstreamThinkingParam: 'sometimes' }),
      /upstreamThinkingParam|upstream-thinking-param/,
    );
  });
});
