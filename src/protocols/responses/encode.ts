/**
 * Responses API out: the response object, whole (non-streaming) or built up through typed SSE
 * events with sequence numbers (response.created, output_item.added, content_part.added,
 * output_text.delta, ..., response.completed / response.incomplete / response.failed).
 */
import type { GenerateRequest, GlimpseError, Usage } from '../../core/index.js';
import { boxesField, findBoxes } from '../boxes.js';
import type { CollectedAnswer, SseEncoder, SseWriter } from '../../streaming/index.js';
import type { StoredResponse } from '../../responses/index.js';
import { hex } from './request.js';
import type { ResponsesBody } from './schema.js';

export interface Meta {
  id: string;
  created: number;
  model: string;
  body: ResponsesBody;
  /** Whether this response is kept (store asked for, and the server keeps responses). */
  store: boolean;
  /** The client asked for a reasoning summary: the reasoning goes out as summary_text parts and reasoning_summary_* events. */
  summary: boolean;
  /** True once POST /v1/responses/{id}/cancel stopped this response (its generation then ends as cancelled). */
  cancelled?: () => boolean;
  /** Keeps the finished response (before its last event is sent); a failure to keep it is logged, not the client's. */
  keep: (response: StoredResponse['response']) => Promise<void>;
  /** The request's messages, once its images are resolved: a finished message item's glimpse_boxes are on its image. */
  messages?: GenerateRequest['messages'];
}

type Status = 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled';

const usageOut = (u: Usage) => ({
  input_tokens: u.promptTokens,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: u.completionTokens,
  output_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
  total_tokens: u.promptTokens + u.completionTokens,
});

const textPart = (text: string) => ({ type: 'output_text' as const, text, annotations: [], logprobs: [] });
/**
 * A reasoning item. With a summary asked for, the model's reasoning text is the summary (GLM
 * writes no separate summary), as clients that read only `summary` (the AI SDK, LangChain) need;
 * otherwise it is the item's reasoning_text content.
 */
const reasoningItem = (id: string, text: string, status: 'in_progress' | 'completed', summary: boolean) => ({
  id,
  type: 'reasoning' as const,
  status,
  summary: summary && text ? [{ type: 'summary_text' as const, text }] : [],
  content: !summary && text ? [{ type: 'reasoning_text' as const, text }] : [],
});
/** A message item; a finished one has `glimpse_boxes` when its text has grounding boxes (as Chat Completions' message has). */
const messageItem = (
  id: string,
  text: string | undefined,
  status: 'in_progress' | 'completed' | 'incomplete',
  messages?: GenerateRequest['messages'],
) => ({
  id,
  type: 'message' as const,
  status,
  role: 'assistant' as const,
  content: text === undefined ? [] : [textPart(text)],
  ...(text && status !== 'in_progress' ? boxesField(findBoxes(text), messages) : {}),
});
const callItem = (
  id: string,
  call: { callId: string; name: string; arguments: string },
  status: 'in_progress' | 'completed',
) => ({ id, type: 'function_call' as const, status, call_id: call.callId, name: call.name, arguments: call.arguments });

export function responseObject(
  m: Meta,
  status: Status,
  output: unknown[],
  extra: { usage?: Usage; error?: GlimpseError; incomplete?: boolean } = {},
) {
  const b = m.body;
  return {
    id: m.id,
    object: 'response' as const,
    created_at: m.created,
    status,
    ...(status === 'completed' ? { completed_at: Math.floor(Date.now() / 1000) } : {}),
    error: extra.error ? { code: extra.error.code, message: extra.error.message } : null,
    incomplete_details: extra.incomplete ? { reason: 'max_output_tokens' } : null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    metadata: b.metadata ?? {},
    model: m.model,
    output,
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    previous_response_id: b.previous_response_id ?? null,
    reasoning: { effort: b.reasoning?.effort ?? null, summary: b.reasoning?.summary ?? null },
    store: m.store,
    temperature: b.temperature ?? 1,
    text: { format: b.text?.format ?? { type: 'text' }, verbosity: b.text?.verbosity ?? 'medium' },
    tool_choice: b.tool_choice ?? 'auto',
    tools: b.tools ?? [],
    top_p: b.top_p ?? 1,
    truncation: 'disabled',
    usage: extra.usage ? usageOut(extra.usage) : null,
  };
}

/** The whole answer as a response object (non-streaming), kept if it is to be. */
export async function completedResponse(m: Meta, a: CollectedAnswer) {
  const incomplete = a.finishReason === 'length';
  const calls = (a.toolCalls ?? []).map((c) =>
    callItem(
      'fc_' + hex(),
      { callId: c.id || `call_${hex()}`, name: c.function.name, arguments: c.function.arguments },
      'completed',
    ),
  );
  // A turn that only calls functions has no message item, as OpenAI answers it.
  const message =
    a.text || !calls.length
      ? [messageItem('msg_' + hex(), a.text, incomplete ? 'incomplete' : 'completed', m.messages)]
      : [];
  const output = [
    ...(a.reasoning ? [reasoningItem('rs_' + hex(), a.reasoning, 'completed', m.summary)] : []),
    ...message,
    ...calls,
  ];
  const response = responseObject(m, incomplete ? 'incomplete' : 'completed', output, { usage: a.usage, incomplete });
  await m.keep(response);
  return response;
}

/** The typed events of one streamed response, with their sequence numbers and the items they build. */
export class ResponseEvents {
  private seq = 0;
  private readonly output: unknown[] = [];
  private reasoning?: { id: string; index: number; text: string };
  private message?: { id: string; index: number; text: string };
  /** Function calls by the engine's call index. */
  private readonly calls = new Map<
    number,
    { id: string; index: number; callId: string; name: string; arguments: string }
  >();
  private usage?: Usage;

  constructor(
    private readonly sse: SseWriter,
    private readonly meta: Meta,
  ) {}

  private send(type: string, fields: Record<string, unknown>): Promise<void> {
    return this.sse.json({ type, sequence_number: this.seq++, ...fields }, type);
  }

  async start(): Promise<void> {
    const r = responseObject(this.meta, 'in_progress', []);
    await this.send('response.created', { response: r });
    await this.send('response.in_progress', { response: r });
  }

  /** Where a reasoning delta goes: the summary part (summary asked for) or the reasoning_text content part. */
  private reasoningPart(r: { id: string; index: number }) {
    const at = { item_id: r.id, output_index: r.index };
    return this.meta.summary
      ? {
          at: { ...at, summary_index: 0 },
          part: 'response.reasoning_summary_part',
          text: 'response.reasoning_summary_text',
          empty: { type: 'summary_text' },
        }
      : {
          at: { ...at, content_index: 0 },
          part: 'response.content_part',
          text: 'response.reasoning_text',
          empty: { type: 'reasoning_text' },
        };
  }

  async reasoningDelta(delta: string): Promise<void> {
    // Reasoning that resumes after text or a call is a new item; the closed one stays as it was.
    if (!this.reasoning || this.output[this.reasoning.index]) {
      this.reasoning = { id: 'rs_' + hex(), index: this.output.length, text: '' };
      this.output.push(null);
      const p = this.reasoningPart(this.reasoning);
      await this.send('response.output_item.added', {
        output_index: this.reasoning.index,
        item: reasoningItem(this.reasoning.id, '', 'in_progress', this.meta.summary),
      });
      await this.send(`${p.part}.added`, { ...p.at, part: { ...p.empty, text: '' } });
    }
    this.reasoning.text += delta;
    await this.send(`${this.reasoningPart(this.reasoning).text}.delta`, {
      ...this.reasoningPart(this.reasoning).at,
      delta,
    });
  }

  private async closeReasoning(): Promise<void> {
    const r = this.reasoning;
    if (!r || this.output[r.index]) return;
    const item = reasoningItem(r.id, r.text, 'completed', this.meta.summary);
    this.output[r.index] = item;
    const p = this.reasoningPart(r);
    await this.send(`${p.text}.done`, { ...p.at, text: r.text });
    await this.send(`${p.part}.done`, { ...p.at, part: { ...p.empty, text: r.text } });
    await this.send('response.output_item.done', { output_index: r.index, item });
  }

  async textDelta(delta: string): Promise<void> {
    await this.closeReasoning();
    if (!this.message) {
      this.message = { id: 'msg_' + hex(), index: this.output.length, text: '' };
      this.output.push(null);
      await this.send('response.output_item.added', {
        output_index: this.message.index,
        item: messageItem(this.message.id, undefined, 'in_progress'),
      });
      await this.send('response.content_part.added', {
        item_id: this.message.id,
        output_index: this.message.index,
        content_index: 0,
        part: textPart(''),
      });
    }
    this.message.text += delta;
    await this.send('response.output_text.delta', {
      item_id: this.message.id,
      output_index: this.message.index,
      content_index: 0,
      delta,
      logprobs: [],
    });
  }

  async toolCall(ev: { index: number; id?: string; name?: string; arguments?: string }): Promise<void> {
    await this.closeReasoning();
    let call = this.calls.get(ev.index);
    if (!call) {
      call = {
        id: 'fc_' + hex(),
        index: this.output.length,
        callId: ev.id ?? `call_${hex()}`,
        name: ev.name ?? '',
        arguments: '',
      };
      this.calls.set(ev.index, call);
      this.output.push(null);
      await this.send('response.output_item.added', {
        output_index: call.index,
        item: callItem(call.id, call, 'in_progress'),
      });
    } else if (ev.name) call.name += ev.name;
    if (ev.arguments) {
      call.arguments += ev.arguments;
      await this.send('response.function_call_arguments.delta', {
        item_id: call.id,
        output_index: call.index,
        delta: ev.arguments,
      });
    }
  }

  setUsage(u: Usage): void {
    this.usage = u;
  }

  async done(incomplete: boolean): Promise<void> {
    await this.closeReasoning();
    // A turn that only calls functions has no message item.
    if (!this.message && !this.calls.size) await this.textDelta('');
    const msg = this.message;
    if (msg) {
      const item = messageItem(msg.id, msg.text, incomplete ? 'incomplete' : 'completed', this.meta.messages);
      this.output[msg.index] = item;
      await this.send('response.output_text.done', {
        item_id: msg.id,
        output_index: msg.index,
        content_index: 0,
        text: msg.text,
        logprobs: [],
      });
      await this.send('response.content_part.done', {
        item_id: msg.id,
        output_index: msg.index,
        content_index: 0,
        part: textPart(msg.text),
      });
      await this.send('response.output_item.done', { output_index: msg.index, item });
    }
    for (const call of this.calls.values()) {
      const item = callItem(call.id, call, 'completed');
      this.output[call.index] = item;
      await this.send('response.function_call_arguments.done', {
        item_id: call.id,
        output_index: call.index,
        name: call.name,
        arguments: call.arguments,
      });
      await this.send('response.output_item.done', { output_index: call.index, item });
    }
    const status = incomplete ? 'incomplete' : 'completed';
    const response = responseObject(this.meta, status, this.output, { usage: this.usage, incomplete });
    await this.meta.keep(response);
    await this.send(`response.${status}`, { response });
  }

  /** Stopped by POST /v1/responses/{id}/cancel: the last event names the response cancelled, with what was made so far. */
  async cancelled(): Promise<void> {
    await this.send('response.cancelled', {
      response: responseObject(this.meta, 'cancelled', this.output.filter(Boolean), { usage: this.usage }),
    });
  }

  async failed(err: GlimpseError): Promise<void> {
    // A request that waited in the queue and was then refused has sent nothing yet: the SDKs need response.created first.
    if (this.seq === 0) await this.start();
    await this.send('response.failed', {
      response: responseObject(this.meta, 'failed', this.output.filter(Boolean), { usage: this.usage, error: err }),
    });
  }
}

/** The SSE encoder of one streamed response; its events share one sequence and one output list. */
export function responsesSseEncoder(meta: Meta): SseEncoder {
  let events: ResponseEvents | undefined;
  const of = (sse: SseWriter) => (events ??= new ResponseEvents(sse, meta));
  return {
    start: (sse) => of(sse).start(),
    event: async (sse, ev) => {
      const e = of(sse);
      if (ev.type === 'token') await e.textDelta(ev.text);
      else if (ev.type === 'reasoning') await e.reasoningDelta(ev.text);
      else if (ev.type === 'tool_call') await e.toolCall(ev);
      else if (ev.type === 'usage') e.setUsage(ev.usage);
      else if (ev.type === 'done' && ev.finishReason !== 'cancelled') await e.done(ev.finishReason === 'length');
      else if (ev.type === 'done' && meta.cancelled?.()) await e.cancelled();
    },
    error: (sse, err) => of(sse).failed(err),
  };
}
