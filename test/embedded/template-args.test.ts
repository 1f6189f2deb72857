/**
 * The embedded engine hands thinking (as enable_thinking) and chat_template_kwargs to the model's
 * own chat template, as transformers and vLLM do. The fixture model's template is copied with two
 * lines added that read those variables; the prompt's token count (exact, from the worker) shows
 * what the template rendered.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer } from '@huggingface/transformers';
import { createEmbeddedEngine, type EmbeddedEngine } from '../../src/engines/embedded/index.js';
import { collect, FIXTURE, fixtureConfig, quietLogger, request } from './helpers.js';

let dir: string;
let engine: EmbeddedEngine;

const NO_THINK = ' /nothink';
const DETAIL = ' Answer in detail.';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'glimpse-template-'));
  cpSync(FIXTURE, dir, { recursive: true });
  const file = join(dir, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as { chat_template: string };
  // Like GLM's and Qwen's templates: a marker when thinking is turned off, and a client variable.
  cfg.chat_template = cfg.chat_template.replace(
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}",
    `{% if add_generation_prompt %}{{ 'Assistant:' }}{% if enable_thinking is defined and enable_thinking == false %}{{ '${NO_THINK}' }}{% endif %}{% if detail is defined and detail %}{{ '${DETAIL}' }}{% endif %}{% endif %}`,
  );
  assert.match(cfg.chat_template, /enable_thinking/, 'the fixture template changed shape: update this test');
  writeFileSync(file, JSON.stringify(cfg));
  engine = createEmbeddedEngine(fixtureConfig({ modelPath: dir }), quietLogger);
  await engine.start();
});

after(async () => {
  await engine?.close();
  rmSync(dir, { recursive: true, force: true });
});

const ask = [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Say something.' }] }];
const promptTokens = async (extra: Parameters<typeof request>[2]) =>
  (await collect(engine.generate(request(ask, { maxTokens: 2 }, extra), new AbortController().signal))).usage!
    .promptTokens;

test('thinking off and chat template variables render in the prompt exactly as the template says', async () => {
  const tokenizer = await AutoTokenizer.from_pretrained(dir);
  const count = (s: string) => tokenizer.encode(s, { add_special_tokens: false }).length;
  const base = await promptTokens({});
  assert.equal(await promptTokens({ thinking: true }), base, 'thinking on: the template adds nothing');
  assert.equal(await promptTokens({ thinking: false }), base + count(NO_THINK));
  assert.equal(await promptTokens({ templateArgs: { detail: true } }), base + count(DETAIL));
  assert.equal(
    await promptTokens({ thinking: false, templateArgs: { detail: true } }),
    base + count(NO_THINK) + count(DETAIL),
  );
});
