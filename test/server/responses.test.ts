/**
 * The OpenAI Responses API through the official openai SDK: client.responses.create (whole and
 * streamed) and suite.client.responses.stream(...).finalResponse(), whose accumulator checks that the
 * event sequence builds the same response object; reasoning items from a thinking upstream; the
 * incomplete and failed endings; what is refused and why.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RED_PIXEL_PNG } from '../helpers/glimpse.js';
import { upstreamSuite } from '../helpers/upstream-suite.js';

describe('POST /v1/responses', () => {
  const suite = upstreamSuite({ before, after }, { cache: { enabled: false } });
  const input = [{ role: 'user' as const, content: [{ type: 'input_image' as const, image_url: RED_PIXEL_PNG, detail: 'auto' as const }, { type: 'input_text' as const, text: 'What is this?' }] }];

  test('whole: a response object with a reasoning item and a message; the SDK reads output_text; instructions and limits reach the model', async () => {
    suite.script = { reasoning: ['Red', ' pixels.'], content: ['A red', ' square.'] };
    const res = await suite.client.responses.create({ model: 'glm-4.6v-flash', instructions: 'Answer briefly.', input, max_output_tokens: 40, temperature: 0.2 });
    assert.equal(res.object, 'response');
    assert.equal(res.status, 'completed');
    assert.equal(res.output_text, 'A red square.');
    assert.deepEqual(res.output.map((o) => o.type), ['reasoning', 'message']);
    const reasoning = res.output[0] as { content?: Array<{ text: string }> };
    assert.equal(reasoning.content?.[0]?.text, 'Red pixels.');
    assert.deepEqual(res.usage && [res.usage.input_tokens > 0, res.usage.output_tokens, res.usage.total_tokens === res.usage.input_tokens + res.usage.output_tokens], [true, 4, true]);
    const sent = suite.vllm.lastChatBody();
    assert.deepEqual(sent.messages[0], { role: 'system', content: 'Answer briefly.' });
    assert.equal(sent.messages[1].content[0].type, 'image_url', 'the image went through the image pipeline to the upstream');
    assert.deepEqual([sent.max_tokens, sent.temperature], [40, 0.2]);
  });

  test('streamed: typed events in order with sequence numbers, and the SDK accumulator builds the same response', async () => {
    suite.script = { reasoning: ['Thinking.'], content: ['A red', ' square', '.'] };
    const stream = await suite.client.responses.create({ model: 'glm-4.6v-flash', input, stream: true });
    const types: string[] = [];
    const seqs: number[] = [];
    let text = '';
    for await (const ev of stream) {
      types.push(ev.type);
      seqs.push(ev.sequence_number);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    assert.equal(text, 'A red square.');
    assert.deepEqual(seqs, seqs.map((_, i) => i), 'sequence numbers count up from 0');
    assert.deepEqual(types.slice(0, 3), ['response.created', 'response.in_progress', 'response.output_item.added']);
    assert.equal(types.at(-1), 'response.completed');
    for (const t of ['response.reasoning_text.delta', 'response.content_part.added', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done']) assert.ok(types.includes(t), t);

    const final = await suite.client.responses.stream({ model: 'glm-4.6v-flash', input }).finalResponse();
    assert.equal(final.status, 'completed');
    assert.equal(final.output_text, 'A red square.');
    assert.deepEqual(final.output.map((o) => o.type), ['reasoning', 'message']);
    assert.equal((final.output[0] as { content?: Array<{ text: string }> }).content?.[0]?.text, 'Thinking.');
  });

  test('a plain string input works; running out of max_output_tokens ends as incomplete', async () => {
    suite.script = { reasoning: [], content: ['one', ' two'], finishReason: 'length' };
    const res = await suite.client.responses.create({ model: 'glm-4.6v-flash', input: 'Count.', max_output_tokens: 2 });
    assert.equal(res.status, 'incomplete');
    assert.deepEqual(res.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(res.output_text, 'one two');
    const types: string[] = [];
    for await (const ev of await suite.client.responses.create({ model: 'glm-4.6v-flash', input: 'Count.', max_output_tokens: 2, stream: true })) types.push(ev.type);
    assert.equal(types.at(-1), 'response.incomplete');
  });

  test('an upstream that dies mid-answer ends the stream with response.failed carrying the error', async () => {
    suite.script = { reasoning: [], content: ['A', ' red', ' square'], dieAfter: 1 };
    const events: Array<{ type: string; response?: { status: string; error: { code: string } | null } }> = [];
    for await (const ev of await suite.client.responses.create({ model: 'glm-4.6v-flash', input, stream: true })) events.push(ev as never);
    const last = events.at(-1)!;
    assert.equal(last.type, 'response.failed');
    assert.equal(last.response?.status, 'failed');
    assert.equal(last.response?.error?.code, 'upstream_error');
  });

  test('what is not kept or served here is refused with 400 naming the field', async () => {
    for (const [extra, param] of [
      [{ previous_response_id: 'resp_123' }, 'previous_response_id'],
      [{ tools: [{ type: 'function', name: 'f', parameters: {} }] }, 'tools'],
      [{ input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1' }] }] }, 'input.0.content.0.image_url'],
      [{ input: [{ role: 'assistant', content: [{ type: 'input_image', image_url: RED_PIXEL_PNG }] }] }, 'input.0.content.0'],
      [{ input: '' }, 'input'],
    ] as const) {
      const res = await fetch(suite.glimpse.url + '/v1/responses', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'glm-4.6v-flash', input: 'hi', ...extra }) });
      assert.equal(res.status, 400, JSON.stringify(extra));
      const err = ((await res.json()) as { error: { param: string } }).error;
      assert.equal(err.param, param, JSON.stringify(extra));
    }
  });
});
