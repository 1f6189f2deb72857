/**
 * The embedded engine on the tiny fixture model: the whole real path (image preprocessing,
 * vision encoder, decoding with KV cache in a worker thread) with its outputs checked against
 * transformers.js called directly in this process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AutoModelForImageTextToText,
  AutoProcessor,
  LogitsProcessor,
  RawImage,
  env,
  type Tensor,
} from '@huggingface/transformers';
import { createEmbeddedEngine, type EmbeddedEngine } from '../../src/engines/embedded/index.js';
import type { ChatMessage } from '../../src/core/index.js';
import {
  askAbout,
  collect,
  FIXTURE,
  fixtureConfig,
  imagePart,
  nextCapacityChange,
  quietLogger,
  request,
  startThenCancel,
} from './helpers.js';

env.allowRemoteModels = false;

let engine: EmbeddedEngine;
let healthWhileStarting: ReturnType<EmbeddedEngine['health']>;
let processor: Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;
let model: Awaited<ReturnType<typeof AutoModelForImageTextToText.from_pretrained>>;

before(async () => {
  engine = createEmbeddedEngine(fixtureConfig(), quietLogger);
  const starting = engine.start();
  healthWhileStarting = engine.health();
  [processor, model] = await Promise.all([
    AutoProcessor.from_pretrained(FIXTURE),
    AutoModelForImageTextToText.from_pretrained(FIXTURE, { dtype: 'fp32' }),
    starting,
  ]);
});

after(async () => {
  await engine.close();
  await model.dispose();
});

/** What transformers.js itself produces, greedily, for the same chat: the reference output. */
async function direct(
  messages: { role: string; colors: ([number, number, number] | string)[] }[],
  maxNewTokens: number,
  generation: Record<string, unknown> = {},
) {
  const images: InstanceType<typeof RawImage>[] = [];
  const chat = messages.map((m) => ({
    role: m.role,
    content: m.colors.map((c) => {
      if (typeof c === 'string') return { type: 'text', text: c };
      images.push(new RawImage(solidRgb(c), 64, 48, 3));
      return { type: 'image' };
    }),
  }));
  const prompt = processor.apply_chat_template(chat as never, { add_generation_prompt: true }) as string;
  const inputs = (images.length ? await processor(prompt, images) : processor.tokenizer!(prompt)) as Record<
    string,
    { dims: number[] }
  >;
  const promptTokens = inputs.input_ids!.dims.at(-1)!;
  const out = (await model.generate({
    ...inputs,
    max_new_tokens: maxNewTokens,
    do_sample: false,
    ...generation,
  } as never)) as { slice: (...a: unknown[]) => unknown };
  const ids = (out.slice(null, [promptTokens, null]) as { tolist: () => bigint[][] }).tolist()[0]!.map(Number);
  return { promptTokens, ids, text: processor.tokenizer!.decode(ids, { skip_special_tokens: true }) };
}

function solidRgb([r, g, b]: [number, number, number]): Uint8ClampedArray {
  const px = new Uint8ClampedArray(64 * 48 * 3);
  for (let i = 0; i < px.length; i += 3) px.set([r, g, b], i);
  return px;
}

const RED: [number, number, number] = [200, 30, 30];
const BLUE: [number, number, number] = [20, 40, 220];
const never = () => new AbortController().signal;

test('decoded pixels from the image pipeline reach the model exactly as the encoded image would', async () => {
  const ref = await direct([{ role: 'user', colors: [BLUE, 'What is in this picture?'] }], 10);
  const part = imagePart(BLUE);
  part.resolved!.rgb = { data: Buffer.from(solidRgb(BLUE)), width: 64, height: 48 };
  // Encoded bytes that are not an image: if the engine used them instead of the pixels, decoding would fail.
  part.resolved!.data = Buffer.from('not an image');
  const got = await collect(
    engine.generate(
      request([{ role: 'user', content: [part, { type: 'text', text: 'What is in this picture?' }] }], {
        maxTokens: 10,
      }),
      never(),
    ),
  );
  assert.equal(got.text, ref.text);
  assert.deepEqual(got.usage, { promptTokens: ref.promptTokens, completionTokens: ref.ids.length });
});

test('warm-up runs before the engine reports ready, and ready comes after start() resolves', () => {
  assert.equal(healthWhileStarting.ready, false);
  assert.equal(healthWhileStarting.status, 'loading');
  assert.match(healthWhileStarting.reason ?? '', /\w/);
  assert.deepEqual(engine.health(), { status: 'healthy', modelLoaded: true, ready: true });
  assert.equal(engine.info().engine, 'embedded');
  assert.equal(engine.info().device, 'cpu');
});

test('greedy output through the worker equals transformers.js generate() on the same image and prompt, with exact usage', async () => {
  const ref = await direct([{ role: 'user', colors: [RED, 'What is in this picture?'] }], 12);
  const got = await collect(engine.generate(request(askAbout(RED), { maxTokens: 12 }), never()));
  assert.equal(got.text, ref.text);
  assert.deepEqual(got.usage, { promptTokens: ref.promptTokens, completionTokens: ref.ids.length });
  assert.deepEqual(got.terminal, { type: 'done', finishReason: 'length' });
  assert.ok(got.tokens >= 2, 'tokens arrive as several events, not one blob');
  // Exactly one terminal event, and it is last.
  assert.equal(got.events.filter((e) => e.type === 'done' || e.type === 'error').length, 1);
});

test("repetition_penalty matches transformers.js's own repetition penalty token for token, and changes the answer", async () => {
  const plain = await direct([{ role: 'user', colors: [RED, 'What is in this picture?'] }], 16);
  const ref = await direct([{ role: 'user', colors: [RED, 'What is in this picture?'] }], 16, {
    repetition_penalty: 1.8,
  });
  const got = await collect(
    engine.generate(request(askAbout(RED), { maxTokens: 16, repetitionPenalty: 1.8 }), never()),
  );
  assert.equal(got.text, ref.text);
  assert.notEqual(ref.text, plain.text, 'the penalty has an effect on this model and prompt');
});

test('presence and frequency penalties count the answer only: the first token is untouched, later ones change', async () => {
  const run = (maxTokens: number, penalties: { frequencyPenalty?: number; presencePenalty?: number } = {}) =>
    collect(engine.generate(request(askAbout(BLUE), { maxTokens, ...penalties }), never()));
  // Negative: favour what was already said. (This random-weight model rarely repeats a token
  // greedily, so a positive penalty would seldom find anything to act on.)
  const strong = { frequencyPenalty: -2, presencePenalty: -2 };
  // Nothing is answered yet when the first token is chosen: the prompt's tokens are not penalised.
  assert.equal((await run(1, strong)).text, (await run(1)).text);
  assert.notEqual((await run(24, strong)).text, (await run(24)).text);
});

test("logprobs are the log-softmax of the model's logits at each chosen token, as transformers.js computes them", async () => {
  // Reference: transformers.js's own greedy generate, with a processor that records what it sees.
  const seen: number[] = [];
  class Recorder extends LogitsProcessor {
    override _call(_ids: bigint[][], logits: Tensor): Tensor {
      const v = logits.data as Float32Array;
      let max = -Infinity;
      for (const x of v) if (x > max) max = x;
      let sum = 0;
      for (const x of v) sum += Math.exp(x - max);
      seen.push(-Math.log(sum)); // the argmax's log-softmax: max - (max + log sum)
      return logits;
    }
  }
  const ref = await direct([{ role: 'user', colors: [RED, 'What is in this picture?'] }], 8, {
    logits_processor: [new Recorder()],
  });
  const got = await collect(
    engine.generate(request(askAbout(RED), { maxTokens: 8 }, { logprobs: { top: 1 } }), never()),
  );
  const entries = got.events.flatMap((e) => (e.type === 'token' ? (e.logprobs ?? []) : []));
  assert.equal(got.text, ref.text);
  assert.equal(entries.length, ref.ids.length);
  entries.forEach((e, i) => assert.ok(Math.abs(e.logprob - seen[i]!) < 1e-4, `token ${i}: ${e.logprob} vs ${seen[i]}`));
});

test('the image changes the answer: a red and a blue image give different greedy outputs', async () => {
  const red = await collect(engine.generate(request(askAbout(RED), { maxTokens: 10 }), never()));
  const blue = await collect(engine.generate(request(askAbout(BLUE), { maxTokens: 10 }), never()));
  assert.notEqual(red.text, blue.text);
});

test('max_tokens caps the completion exactly', async () => {
  for (const maxTokens of [1, 5]) {
    const got = await collect(engine.generate(request(askAbout(RED), { maxTokens }), never()));
    assert.equal(got.usage?.completionTokens, maxTokens);
    assert.deepEqual(got.terminal, { type: 'done', finishReason: 'length' });
  }
});

test('a stop string ends the answer just before it, with finish reason stop', async () => {
  const full = await collect(engine.generate(request(askAbout(RED), { maxTokens: 24 }), never()));
  const cutAt = Math.floor(full.text.length / 2);
  const stop = full.text.slice(cutAt, cutAt + 2);
  const expected = full.text.slice(0, full.text.indexOf(stop));
  const got = await collect(engine.generate(request(askAbout(RED), { maxTokens: 24, stop: [stop] }), never()));
  assert.equal(got.text, expected);
  assert.deepEqual(got.terminal, { type: 'done', finishReason: 'stop' });
  assert.ok(got.usage!.completionTokens < 24, 'generation stopped early instead of running to max_tokens');
});

test('the same seed gives the same sampled answer and another seed a different one', async () => {
  const run = (seed: number) =>
    collect(engine.generate(request(askAbout(RED), { maxTokens: 16, temperature: 1, topP: 0.95, seed }), never()));
  const a = await run(11);
  const b = await run(11);
  const c = await run(12);
  assert.equal(a.text, b.text);
  assert.notEqual(a.text, c.text);
});

test('a multi-turn chat with two images counts every image token in the prompt', async () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: [imagePart(RED), { type: 'text', text: 'What color is this?' }] },
    { role: 'assistant', content: [{ type: 'text', text: 'It is red.' }] },
    { role: 'user', content: [imagePart(BLUE), { type: 'text', text: 'And this one?' }] },
  ];
  const ref = await direct(
    [
      { role: 'user', colors: [RED, 'What color is this?'] },
      { role: 'assistant', colors: ['It is red.'] },
      { role: 'user', colors: [BLUE, 'And this one?'] },
    ],
    8,
  );
  const got = await collect(engine.generate(request(messages, { maxTokens: 8 }), never()));
  assert.equal(got.text, ref.text);
  assert.equal(got.usage?.promptTokens, ref.promptTokens);
  const oneImage = await collect(
    engine.generate(request(askAbout(RED, 'What color is this?'), { maxTokens: 1 }), never()),
  );
  assert.ok(
    got.usage!.promptTokens > 2 * oneImage.usage!.promptTokens - 10,
    'both images were expanded into image tokens',
  );
});

test('a text-only request works without any image', async () => {
  const got = await collect(
    engine.generate(
      request([{ role: 'user', content: [{ type: 'text', text: 'Say hello.' }] }], { maxTokens: 4 }),
      never(),
    ),
  );
  assert.equal(got.usage?.completionTokens, 4);
  const ref = await direct([{ role: 'user', colors: ['Say hello.'] }], 4);
  assert.equal(got.text, ref.text);
});

test('aborting mid-generation stops within a step, ends with cancelled, and frees the worker', async () => {
  const ctrl = new AbortController();
  const events = [];
  let tokens = 0;
  for await (const ev of engine.generate(request(askAbout(RED), { maxTokens: 1500 }), ctrl.signal)) {
    events.push(ev);
    if (ev.type === 'token' && ++tokens === 3) ctrl.abort();
  }
  const usage = events.find((e) => e.type === 'usage');
  assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'cancelled' });
  // The worker checks the stop flag every step; it is ahead of this thread's view of the stream by
  // the tokens in flight (pieces are coalesced for 20 ms, and this tiny model makes a token in about
  // a millisecond once warm: 40-60 tokens), so allow that slack, far below the 1500 it was allowed.
  assert.ok(
    usage?.type === 'usage' && usage.usage.completionTokens < 150,
    `stopped promptly, got ${JSON.stringify(usage)}`,
  );
  const next = await collect(engine.generate(request(askAbout(BLUE), { maxTokens: 3 }), never()));
  assert.equal(next.usage?.completionTokens, 3);
});

test('a request cancelled as soon as it reaches the worker stops at once: no token, or only the one step already under way', async () => {
  const events = await startThenCancel(engine, request(askAbout(RED), { maxTokens: 500 }));
  assert.deepEqual(events.at(-1), { type: 'done', finishReason: 'cancelled' });
  const usage = events.find((e) => e.type === 'usage');
  // The stop flag is set right after the job is posted; the worker reads it before decoding. On a
  // busy machine this thread can be descheduled between the two while the worker runs ahead into
  // its first step, which then finishes (one token) before the flag is seen.
  assert.ok(!usage || (usage.type === 'usage' && usage.usage.completionTokens <= 1), JSON.stringify(usage));
});

test('a consumer that walks away early (client gone) stops the worker, which is offered again once it has unwound', async () => {
  let back: Promise<void> | undefined;
  for await (const ev of engine.generate(request(askAbout(RED), { maxTokens: 1500 }), never())) {
    if (ev.type === 'token') {
      back = nextCapacityChange(engine);
      break;
    }
  }
  await back;
  assert.equal(engine.capacity(), 1);
  const next = await collect(engine.generate(request(askAbout(BLUE), { maxTokens: 3 }), never()));
  assert.equal(next.usage?.completionTokens, 3);
});

test('a generation asked for beyond capacity (the only worker busy) is refused at once with internal_error, not queued; the running one is unaffected', async () => {
  const alone = await collect(engine.generate(request(askAbout(RED), { maxTokens: 6 }), never()));
  const [a, b] = await Promise.all([
    collect(engine.generate(request(askAbout(RED), { maxTokens: 6 }), never())),
    collect(engine.generate(request(askAbout(BLUE), { maxTokens: 6 }), never())),
  ]);
  assert.deepEqual(a.terminal, { type: 'done', finishReason: 'length' });
  assert.equal(a.text, alone.text);
  assert.equal(b.terminal.type === 'error' && b.terminal.error.code, 'internal_error');
  assert.equal(b.tokens, 0);
});

test('the event loop stays responsive while a generation runs (health can answer)', async () => {
  const lags: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(now - last - 5);
    last = now;
    engine.health();
  }, 5);
  await collect(engine.generate(request(askAbout(RED), { maxTokens: 200 }), never()));
  clearInterval(timer);
  lags.sort((x, y) => x - y);
  const p99 = lags[Math.floor(lags.length * 0.99)] ?? 0;
  // Generous bound: the point is that inference is not on this thread (it would block for the whole run).
  assert.ok(lags.length > 5 && p99 < 200, `p99 event-loop lag ${p99.toFixed(1)} ms over ${lags.length} samples`);
});

test('a prompt longer than the context is refused with context_length_exceeded', async () => {
  const long = 'word '.repeat(2100);
  const got = await collect(
    engine.generate(request([{ role: 'user', content: [{ type: 'text', text: long }] }]), never()),
  );
  assert.equal(got.terminal.type === 'error' && got.terminal.error.code, 'context_length_exceeded');
  assert.equal(got.terminal.type === 'error' && got.terminal.error.status, 400);
});

test('an image that is not an image is refused with invalid_image, and the engine keeps serving', async () => {
  const bogus = Buffer.from('not a picture at all');
  const messages: ChatMessage[] = [
    {
      role: 'user',
      content: [
        {
          type: 'image',
          source: { kind: 'bytes', data: bogus },
          resolved: { data: bogus, mime: 'image/png', width: 1, height: 1, sourceFormat: 'png', sha256: '' },
        },
        { type: 'text', text: 'Hi' },
      ],
    },
  ];
  const got = await collect(engine.generate(request(messages), never()));
  assert.equal(got.terminal.type === 'error' && got.terminal.error.code, 'invalid_image');
  const next = await collect(engine.generate(request(askAbout(RED), { maxTokens: 2 }), never()));
  assert.equal(next.usage?.completionTokens, 2);
});

test('a request with no messages gets empty_messages', async () => {
  const got = await collect(engine.generate(request([]), never()));
  assert.equal(got.terminal.type === 'error' && got.terminal.error.code, 'empty_messages');
});

test('a worker crash fails the in-flight request with engine_error and a new worker takes over', async () => {
  const events = [];
  for await (const ev of engine.generate(request(askAbout(RED), { maxTokens: 1500 }), never())) {
    events.push(ev);
    if (events.length === 2) engine.simulateWorkerCrash(0);
  }
  const last = events.at(-1);
  assert.equal(last?.type === 'error' && last.error.code, 'engine_error');
  // Sent at once, while the new worker is still loading: refused with a reason and when to retry,
  // since nothing waits inside the engine (the scheduler in front holds requests until capacity is back).
  assert.equal(engine.health().ready, false);
  assert.equal(engine.capacity(), 0);
  const back = nextCapacityChange(engine);
  const during = await collect(engine.generate(request(askAbout(BLUE), { maxTokens: 3 }), never()));
  assert.equal(during.terminal.type === 'error' && during.terminal.error.code, 'model_loading');
  assert.equal(during.terminal.type === 'error' && during.terminal.error.retryAfterSeconds, 5);
  await back;
  const next = await collect(engine.generate(request(askAbout(BLUE), { maxTokens: 3 }), never()));
  assert.equal(next.usage?.completionTokens, 3);
  assert.equal(engine.health().status, 'healthy');
});
