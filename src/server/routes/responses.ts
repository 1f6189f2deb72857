/**
 * OpenAI Responses API (`POST /v1/responses`), the shape the OpenAI Agents SDK and newer clients
 * call: `input` as a string or messages with `input_text` / `input_image` parts, `instructions`,
 * `max_output_tokens`, sampling, `reasoning.effort` (thinking on or off), `text.format` (structured
 * output, passed on as chat's response_format), `stream`. The answer is a `response` object whose
 * `output` holds a `reasoning` item (when the model thinks) and a `message` item; streamed, it is the same object
 * built up through typed events (response.created, output_item.added, content_part.added,
 * output_text.delta, ..., response.completed / response.incomplete / response.failed), each with
 * its sequence number.
 *
 * Function tools work as on chat completions (engines that support them: upstream servers):
 * `tools` in the Responses shape, `function_call` items out (streamed as
 * function_call_arguments deltas), and `function_call` / `function_call_output` items in the
 * next turn's input.
 *
 * Responses are stored (`store`, true unless the client or --no-responses-store says otherwise) in
 * memory or Redis (src/responses): `previous_response_id` continues a stored conversation (its
 * turns' input and output come before the new input; `instructions` and tools are not carried
 * over, as in OpenAI's API), and `GET /v1/responses/{id}`, `.../input_items` and `DELETE` work on
 * what the caller's API key stored. A response is stored before its last event or body is sent, so
 * a client may continue it the moment it has it.
 */
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { Type, type Static } from 'typebox';
import type { Config } from '../../config/index.js';
import { GlimpseError, type ChatMessage, type ContentPart, type GenerateRequest, type ToolCall, type Usage } from '../../core/index.js';
import { collectAnswer, type CollectedAnswer, type SseWriter } from '../../streaming/index.js';
import { checkToolChoice, imageSourceFromString, origin, REASONING_EFFORTS, resolveThinking } from '../common.js';
import type { RequestDefaults, RequestOrigin } from '../../protocols/defaults.js';
import { openForBody, streamSse } from '../respond.js';
import type { GenerationPipeline } from '../pipeline.js';
import type { ResponseStore, StoredResponse } from '../../responses/index.js';

export function responsesSchema(config: Config) {
  const text = Type.String({ maxLength: config.maxPromptChars });
  const part = Type.Union([
    Type.Object({ type: Type.Literal('input_text'), text }),
    Type.Object({ type: Type.Literal('input_image'), image_url: Type.Optional(Type.String({ minLength: 1 })), file_id: Type.Optional(Type.String()), detail: Type.Optional(Type.String()) }),
    // Earlier assistant turns, as this API returns them.
    Type.Object({ type: Type.Literal('output_text'), text, annotations: Type.Optional(Type.Array(Type.Unknown())) }),
  ]);
  const message = Type.Object({
    type: Type.Optional(Type.Literal('message')),
    role: Type.Enum(['user', 'system', 'developer', 'assistant']),
    content: Type.Union([text, Type.Array(part, { maxItems: 64 })]),
    id: Type.Optional(Type.String()),
    status: Type.Optional(Type.String()),
  });
  // A call the model made in an earlier turn, and what the caller's function returned.
  const functionCall = Type.Object({
    type: Type.Literal('function_call'),
    call_id: Type.String({ minLength: 1, maxLength: 256 }),
    name: Type.String({ minLength: 1, maxLength: 64 }),
    arguments: Type.String({ maxLength: config.maxPromptChars }),
    id: Type.Optional(Type.String()),
    status: Type.Optional(Type.String()),
  });
  const functionOutput = Type.Object({
    type: Type.Literal('function_call_output'),
    call_id: Type.String({ minLength: 1, maxLength: 256 }),
    output: text,
    id: Type.Optional(Type.String()),
    status: Type.Optional(Type.String()),
  });
  // The model's reasoning from an earlier turn (clients send `...response.output` back): accepted and left out, as chat templates drop it.
  const reasoningItem = Type.Object({ type: Type.Literal('reasoning'), id: Type.Optional(Type.String()) }, { additionalProperties: true });
  const functionTool = Type.Object({
    type: Type.Literal('function'),
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9_-]+$' }),
    description: Type.Optional(Type.Union([Type.String({ maxLength: config.maxPromptChars }), Type.Null()])),
    parameters: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
    strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  });
  return Type.Object(
    {
      model: Type.Optional(Type.String({ maxLength: 256 })),
      input: Type.Union([Type.String({ minLength: 1, maxLength: config.maxPromptChars }), Type.Array(Type.Union([message, functionCall, functionOutput, reasoningItem]), { minItems: 1, maxItems: config.maxMessages })]),
      instructions: Type.Optional(Type.Union([text, Type.Null()])),
      max_output_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: config.maxTokensLimit }), Type.Null()])),
      temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
      top_p: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 1 }), Type.Null()])),
      stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
      store: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
      previous_response_id: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 256 }), Type.Null()])),
      tools: Type.Optional(Type.Array(functionTool, { maxItems: 128 })),
      tool_choice: Type.Optional(Type.Union([Type.Enum(['none', 'auto', 'required']), Type.Object({ type: Type.Literal('function'), name: Type.String({ minLength: 1, maxLength: 64 }) })])),
      parallel_tool_calls: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
      reasoning: Type.Optional(
        Type.Union([
          Type.Object({
            effort: Type.Optional(Type.Union([Type.Enum([...REASONING_EFFORTS], { description: "'none' and 'minimal' turn thinking off, the others on." }), Type.Null()])),
            summary: Type.Optional(Type.Union([Type.String(), Type.Null()])),
          }),
          Type.Null(),
        ]),
      ),
      // Structured output (what the Agents SDK's output_type sends): the chat shape's response_format, flattened.
      text: Type.Optional(
        Type.Union([
          Type.Object({
            format: Type.Optional(
              Type.Union([
                Type.Object({ type: Type.Enum(['text', 'json_object']) }),
                Type.Object({
                  type: Type.Literal('json_schema'),
                  name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9_-]+$' }),
                  schema: Type.Record(Type.String(), Type.Unknown()),
                  description: Type.Optional(Type.String({ maxLength: config.maxPromptChars })),
                  strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
                }),
              ]),
            ),
            verbosity: Type.Optional(Type.Union([Type.Enum(['low', 'medium', 'high']), Type.Null()])),
          }),
          Type.Null(),
        ]),
      ),
      metadata: Type.Optional(Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()])),
    },
    { description: 'OpenAI Responses request: text and image inputs, text output. Unknown fields are accepted and ignored.' },
  );
}

type ResponsesBody = Static<ReturnType<typeof responsesSchema>>;
type InputItem = Exclude<ResponsesBody['input'], string>[number];

/** The request's input as items with ids, as a stored response keeps them and input_items lists them. */
function inputItems(b: ResponsesBody): InputItem[] {
  if (typeof b.input === 'string') return [{ id: 'msg_' + hex(), type: 'message', role: 'user', content: [{ type: 'input_text', text: b.input }] }];
  return b.input.map((m) => ({ ...m, id: m.id ?? (m.type === 'function_call' ? 'fc_' : m.type === 'function_call_output' ? 'fco_' : m.type === 'reasoning' ? 'rs_' : 'msg_') + hex() }));
}

/** `items`: the earlier turns of a continued conversation (`historyItems` of them), then this request's input. */
function toRequest(b: ResponsesBody, items: InputItem[], historyItems: number, origin: RequestOrigin, defaults: RequestDefaults): GenerateRequest {
  const messages: ChatMessage[] = [];
  if (b.instructions) messages.push({ role: 'system', content: [{ type: 'text', text: b.instructions }] });
  items.forEach((m, i) => {
    if (m.type === 'reasoning') return;
    if (m.type === 'function_call') {
      const call: ToolCall = { id: m.call_id, type: 'function', function: { name: m.name, arguments: m.arguments } };
      // Calls made in one turn (in parallel) are one assistant message, as chat templates expect.
      const last = messages.at(-1);
      if (last?.role === 'assistant' && last.toolCalls) last.toolCalls.push(call);
      else messages.push({ role: 'assistant', content: [], toolCalls: [call] });
      return;
    }
    if (m.type === 'function_call_output') {
      messages.push({ role: 'tool', content: [{ type: 'text', text: m.output }], toolCallId: m.call_id });
      return;
    }
    const role = m.role === 'developer' ? 'system' : m.role;
    const content: ContentPart[] =
      typeof m.content === 'string'
        ? [{ type: 'text', text: m.content }]
        : m.content.map((p, j): ContentPart => {
            // Named as the client sent it (earlier turns were checked when they were sent).
            const param = `input.${i - historyItems}.content.${j}`;
            if (p.type !== 'input_image') return { type: 'text', text: p.text };
            if (role !== 'user') throw new GlimpseError('invalid_request', `Images are only accepted in user messages (input.${i - historyItems} is '${m.role}').`, { param });
            if (!p.image_url) throw new GlimpseError('missing_image', `${param} needs an image_url (a data URL or an http(s) URL); uploaded file ids are not kept here.`, { param: `${param}.image_url` });
            return { type: 'image', source: imageSourceFromString(p.image_url, `${param}.image_url`) };
          });
    messages.push({ role, content });
  });
  if (!messages.some((m) => m.role === 'user' && m.content.length)) throw new GlimpseError('empty_messages', "'input' must contain a user message with content.", { param: 'input' });
  const effort = b.reasoning?.effort;
  return {
    toolOptions: toolOptions(b),
    id: origin.id,
    model: b.model || defaults.model,
    messages,
    stream: b.stream === true,
    thinking: resolveThinking({ reasoningEffort: effort ?? undefined }),
    sampling: { maxTokens: b.max_output_tokens ?? defaults.maxTokens, temperature: b.temperature ?? 1, topP: b.top_p ?? 1, stop: [] },
    keyId: origin.keyId,
  };
}

/** tools, tool_choice, parallel_tool_calls and text.format in the chat shape, which is what engines speak; undefined when none is set. */
function toolOptions(b: ResponsesBody): GenerateRequest['toolOptions'] {
  const tools = b.tools?.length ? b.tools : undefined;
  checkToolChoice(b.tool_choice, tools?.map((t) => t.name));
  const responseFormat = chatResponseFormat(b.text?.format);
  if (!tools && !responseFormat) return undefined;
  return {
    tools: tools?.map((t) => ({ type: 'function', function: { name: t.name, ...(t.description ? { description: t.description } : {}), ...(t.parameters ? { parameters: t.parameters } : {}), ...(t.strict != null ? { strict: t.strict } : {}) } })),
    toolChoice: tools ? (typeof b.tool_choice === 'object' ? { type: 'function', function: { name: b.tool_choice.name } } : (b.tool_choice ?? undefined)) : undefined,
    parallelToolCalls: tools ? (b.parallel_tool_calls ?? undefined) : undefined,
    responseFormat,
  };
}

/** text.format as chat's response_format (name, schema, description and strict move under json_schema); plain text is no format. */
function chatResponseFormat(format: NonNullable<ResponsesBody['text']>['format']): unknown {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  const { type, ...jsonSchema } = format;
  return { type, json_schema: jsonSchema };
}

const hex = () => randomBytes(12).toString('hex');

interface Meta {
  id: string;
  created: number;
  model: string;
  body: ResponsesBody;
  /** Whether this response is kept (store asked for, and the server keeps responses). */
  store: boolean;
  /** Keeps the finished response (before its last event is sent); a failure to keep it is logged, not the client's. */
  keep: (response: StoredResponse['response']) => Promise<void>;
}

type Status = 'in_progress' | 'completed' | 'incomplete' | 'failed';

const usageOut = (u: Usage) => ({
  input_tokens: u.promptTokens,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: u.completionTokens,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: u.promptTokens + u.completionTokens,
});

const textPart = (text: string) => ({ type: 'output_text' as const, text, annotations: [], logprobs: [] });
const reasoningItem = (id: string, text: string, status: 'in_progress' | 'completed') => ({ id, type: 'reasoning' as const, status, summary: [], content: text ? [{ type: 'reasoning_text' as const, text }] : [] });
const messageItem = (id: string, text: string | undefined, status: 'in_progress' | 'completed' | 'incomplete') => ({ id, type: 'message' as const, status, role: 'assistant' as const, content: text === undefined ? [] : [textPart(text)] });
const callItem = (id: string, call: { callId: string; name: string; arguments: string }, status: 'in_progress' | 'completed') => ({ id, type: 'function_call' as const, status, call_id: call.callId, name: call.name, arguments: call.arguments });

function responseObject(m: Meta, status: Status, output: unknown[], extra: { usage?: Usage; error?: GlimpseError; incomplete?: boolean } = {}) {
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
    reasoning: { effort: b.reasoning?.effort ?? null, summary: null },
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
async function completedResponse(m: Meta, a: CollectedAnswer) {
  const incomplete = a.finishReason === 'length';
  const calls = (a.toolCalls ?? []).map((c) => callItem('fc_' + hex(), { callId: c.id || `call_${hex()}`, name: c.function.name, arguments: c.function.arguments }, 'completed'));
  // A turn that only calls functions has no message item, as OpenAI answers it.
  const message = a.text || !calls.length ? [messageItem('msg_' + hex(), a.text, incomplete ? 'incomplete' : 'completed')] : [];
  const output = [...(a.reasoning ? [reasoningItem('rs_' + hex(), a.reasoning, 'completed')] : []), ...message, ...calls];
  const response = responseObject(m, incomplete ? 'incomplete' : 'completed', output, { usage: a.usage, incomplete });
  await m.keep(response);
  return response;
}

/** The typed events of one streamed response, with their sequence numbers and the items they build. */
class ResponseEvents {
  private seq = 0;
  private readonly output: unknown[] = [];
  private reasoning?: { id: string; index: number; text: string };
  private message?: { id: string; index: number; text: string };
  /** Function calls by the engine's call index. */
  private readonly calls = new Map<number, { id: string; index: number; callId: string; name: string; arguments: string }>();
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

  async reasoningDelta(delta: string): Promise<void> {
    // Reasoning that resumes after text or a call is a new item; the closed one stays as it was.
    if (!this.reasoning || this.output[this.reasoning.index]) {
      this.reasoning = { id: 'rs_' + hex(), index: this.output.length, text: '' };
      this.output.push(null);
      await this.send('response.output_item.added', { output_index: this.reasoning.index, item: reasoningItem(this.reasoning.id, '', 'in_progress') });
      await this.send('response.content_part.added', { item_id: this.reasoning.id, output_index: this.reasoning.index, content_index: 0, part: { type: 'reasoning_text', text: '' } });
    }
    this.reasoning.text += delta;
    await this.send('response.reasoning_text.delta', { item_id: this.reasoning.id, output_index: this.reasoning.index, content_index: 0, delta });
  }

  private async closeReasoning(): Promise<void> {
    const r = this.reasoning;
    if (!r || this.output[r.index]) return;
    const item = reasoningItem(r.id, r.text, 'completed');
    this.output[r.index] = item;
    await this.send('response.reasoning_text.done', { item_id: r.id, output_index: r.index, content_index: 0, text: r.text });
    await this.send('response.content_part.done', { item_id: r.id, output_index: r.index, content_index: 0, part: { type: 'reasoning_text', text: r.text } });
    await this.send('response.output_item.done', { output_index: r.index, item });
  }

  async textDelta(delta: string): Promise<void> {
    await this.closeReasoning();
    if (!this.message) {
      this.message = { id: 'msg_' + hex(), index: this.output.length, text: '' };
      this.output.push(null);
      await this.send('response.output_item.added', { output_index: this.message.index, item: messageItem(this.message.id, undefined, 'in_progress') });
      await this.send('response.content_part.added', { item_id: this.message.id, output_index: this.message.index, content_index: 0, part: textPart('') });
    }
    this.message.text += delta;
    await this.send('response.output_text.delta', { item_id: this.message.id, output_index: this.message.index, content_index: 0, delta, logprobs: [] });
  }

  async toolCall(ev: { index: number; id?: string; name?: string; arguments?: string }): Promise<void> {
    await this.closeReasoning();
    let call = this.calls.get(ev.index);
    if (!call) {
      call = { id: 'fc_' + hex(), index: this.output.length, callId: ev.id ?? `call_${hex()}`, name: ev.name ?? '', arguments: '' };
      this.calls.set(ev.index, call);
      this.output.push(null);
      await this.send('response.output_item.added', { output_index: call.index, item: callItem(call.id, call, 'in_progress') });
    } else if (ev.name) call.name += ev.name;
    if (ev.arguments) {
      call.arguments += ev.arguments;
      await this.send('response.function_call_arguments.delta', { item_id: call.id, output_index: call.index, delta: ev.arguments });
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
      const item = messageItem(msg.id, msg.text, incomplete ? 'incomplete' : 'completed');
      this.output[msg.index] = item;
      await this.send('response.output_text.done', { item_id: msg.id, output_index: msg.index, content_index: 0, text: msg.text, logprobs: [] });
      await this.send('response.content_part.done', { item_id: msg.id, output_index: msg.index, content_index: 0, part: textPart(msg.text) });
      await this.send('response.output_item.done', { output_index: msg.index, item });
    }
    for (const call of this.calls.values()) {
      const item = callItem(call.id, call, 'completed');
      this.output[call.index] = item;
      await this.send('response.function_call_arguments.done', { item_id: call.id, output_index: call.index, name: call.name, arguments: call.arguments });
      await this.send('response.output_item.done', { output_index: call.index, item });
    }
    const status = incomplete ? 'incomplete' : 'completed';
    const response = responseObject(this.meta, status, this.output, { usage: this.usage, incomplete });
    await this.meta.keep(response);
    await this.send(`response.${status}`, { response });
  }

  async failed(err: GlimpseError): Promise<void> {
    // A request that waited in the queue and was then refused has sent nothing yet: the SDKs need response.created first.
    if (this.seq === 0) await this.start();
    await this.send('response.failed', { response: responseObject(this.meta, 'failed', this.output.filter(Boolean), { usage: this.usage, error: err }) });
  }
}

export function registerResponsesRoutes(app: FastifyInstance, deps: { config: Config; defaults: RequestDefaults; pipeline: GenerationPipeline; store?: ResponseStore }): void {
  const { config, defaults, pipeline, store } = deps;
  const schema = responsesSchema(config);
  const owner = (keyId: string | undefined) => keyId ?? null;
  const idParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 256 }) });

  app.post<{ Body: ResponsesBody }>(
    '/v1/responses',
    { schema: { tags: ['OpenAI'], summary: 'OpenAI Responses API: text and image input, text output; typed SSE events when stream is true', body: schema }, config: { errorFormat: 'openai' } },
    async (request, reply) => {
      const b = request.body;
      const input = inputItems(b);
      let history: InputItem[] = [];
      if (b.previous_response_id) {
        if (!store) throw new GlimpseError('invalid_request', 'This server keeps no responses (--no-responses-store): send the whole conversation as input instead of previous_response_id.', { param: 'previous_response_id' });
        history = (await store.history(b.previous_response_id, owner(request.keyId), config.maxMessages)) as InputItem[];
        if (history.length + input.length > config.maxMessages) {
          throw new GlimpseError('invalid_request', `The conversation behind previous_response_id and this input hold ${history.length + input.length} items; at most ${config.maxMessages} are taken. Start a new conversation, or send the turns that matter as input.`, { param: 'previous_response_id' });
        }
      }
      const req = toRequest(b, [...history, ...input], history.length, origin(request), defaults);
      const keeping = store !== undefined && b.store !== false;
      const meta: Meta = {
        id: 'resp_' + hex(),
        created: Math.floor(Date.now() / 1000),
        model: req.model,
        body: b,
        store: keeping,
        keep: async (response) => {
          if (!keeping) return;
          try {
            const kept = await store.put({ owner: owner(request.keyId), previousId: b.previous_response_id ?? null, input, response });
            if (!kept) request.log.warn({ response: response.id }, 'response too large to keep; previous_response_id to it will not be found');
          } catch (err) {
            request.log.warn({ err, response: response.id }, 'response could not be kept');
          }
        },
      };
      if (!req.stream) return completedResponse(meta, await collectAnswer(await openForBody(pipeline, request, reply, req)));

      let events: ResponseEvents | undefined;
      const of = (sse: SseWriter) => (events ??= new ResponseEvents(sse, meta));
      await streamSse({ pipeline, config }, request, reply, req, {
        start: (sse) => of(sse).start(),
        event: async (sse, ev) => {
          const e = of(sse);
          if (ev.type === 'token') await e.textDelta(ev.text);
          else if (ev.type === 'reasoning') await e.reasoningDelta(ev.text);
          else if (ev.type === 'tool_call') await e.toolCall(ev);
          else if (ev.type === 'usage') e.setUsage(ev.usage);
          else if (ev.type === 'done' && ev.finishReason !== 'cancelled') await e.done(ev.finishReason === 'length');
        },
        error: (sse, err) => of(sse).failed(err),
      });
    },
  );

  const stored = async (id: string, keyId: string | undefined): Promise<StoredResponse> => {
    const r = store ? await store.get(id, owner(keyId)) : undefined;
    if (!r) throw new GlimpseError('response_not_found', `No stored response '${id}' (never stored, expired, deleted, or made with another API key).`, { param: 'id' });
    return r;
  };

  app.get<{ Params: Static<typeof idParams> }>(
    '/v1/responses/:id',
    { schema: { tags: ['OpenAI'], summary: 'A stored response, as it was answered', params: idParams }, config: { errorFormat: 'openai' } },
    async (request) => (await stored(request.params.id, request.keyId)).response,
  );

  const listQuery = Type.Object({
    order: Type.Optional(Type.Enum(['asc', 'desc'])),
    // Query strings are text; the route reads the number itself (1..100).
    limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$', description: 'Items per page, 1..100 (default 20).' })),
    after: Type.Optional(Type.String({ maxLength: 256 })),
  });
  app.get<{ Params: Static<typeof idParams>; Querystring: Static<typeof listQuery> }>(
    '/v1/responses/:id/input_items',
    { schema: { tags: ['OpenAI'], summary: "A stored response's input items (this turn's; newest first unless order=asc)", params: idParams, querystring: listQuery }, config: { errorFormat: 'openai' } },
    async (request) => {
      const { order = 'desc', after } = request.query;
      const limit = Number(request.query.limit ?? 20);
      const items = (await stored(request.params.id, request.keyId)).input;
      const ordered = order === 'asc' ? items : [...items].reverse();
      const from = after === undefined ? 0 : ordered.findIndex((it) => it.id === after) + 1;
      if (after !== undefined && from === 0) throw new GlimpseError('invalid_request', `'after' names no input item of this response.`, { param: 'after' });
      const page = ordered.slice(from, from + limit);
      return { object: 'list', data: page, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: from + limit < ordered.length };
    },
  );

  app.delete<{ Params: Static<typeof idParams> }>(
    '/v1/responses/:id',
    { schema: { tags: ['OpenAI'], summary: 'Forget a stored response', params: idParams }, config: { errorFormat: 'openai' } },
    async (request) => {
      const { id } = request.params;
      if (!store || !(await store.delete(id, owner(request.keyId)))) throw new GlimpseError('response_not_found', `No stored response '${id}'.`, { param: 'id' });
      return { id, object: 'response', deleted: true };
    },
  );
}
