import type { FastifyInstance } from 'fastify';
import type { Static } from 'typebox';
import type { Config } from '../../config/index.js';
import { GlimpseError, type ChatMessage, type ContentPart, type Engine, type ExtraSampling, type GenerateRequest, type Usage } from '../../core/index.js';
import { chatChunk, chatCompletion, chatUsageChunk, collectAnswer, completionId, toolCallDelta } from '../../streaming/index.js';
import { checkTemplateArgs, checkToolChoice, imageSourceFromString, origin, resolveThinking } from '../common.js';
import type { RequestDefaults, RequestOrigin } from '../../protocols/defaults.js';
import { openForBody, streamSse } from '../respond.js';
import type { GenerationPipeline } from '../pipeline.js';
import type { buildSchemas } from '../schemas.js';

type Schemas = ReturnType<typeof buildSchemas>;
export type ChatBody = Static<Schemas['chatCompletions']>;

/** OpenAI messages → internal messages. `reasoning_content` of earlier turns is dropped, as GLM expects. */
export function toInternalMessages(messages: ChatBody['messages']): ChatMessage[] {
  return messages.map((m, i): ChatMessage => {
    const role = m.role === 'developer' ? 'system' : m.role;
    let content: ContentPart[];
    if (m.content === null || m.content === undefined) content = [];
    else if (typeof m.content === 'string') content = [{ type: 'text', text: m.content }];
    else
      content = m.content.map((p, j): ContentPart => {
        if (p.type === 'text') return { type: 'text', text: p.text };
        const url = typeof p.image_url === 'string' ? p.image_url : p.image_url.url;
        return { type: 'image', source: imageSourceFromString(url, `messages.${i}.content.${j}.image_url`) };
      });
    if (role !== 'user' && content.some((p) => p.type === 'image')) {
      throw new GlimpseError('invalid_request', `Images are only accepted in user messages (messages.${i} is '${m.role}').`, { param: `messages.${i}` });
    }
    if (role === 'tool') {
      if (!m.tool_call_id) throw new GlimpseError('invalid_request', `messages.${i} is a tool result: it needs the tool_call_id of the call it answers.`, { param: `messages.${i}.tool_call_id` });
      return { role, content, toolCallId: m.tool_call_id };
    }
    if (m.tool_calls?.length) {
      if (role !== 'assistant') throw new GlimpseError('invalid_request', `Only assistant messages carry tool_calls (messages.${i} is '${m.role}').`, { param: `messages.${i}.tool_calls` });
      return { role, content, toolCalls: m.tool_calls };
    }
    return { role, content };
  });
}

function logprobsOption(b: ChatBody): GenerateRequest['logprobs'] {
  if (b.top_logprobs != null && b.logprobs !== true) throw new GlimpseError('invalid_request', 'top_logprobs needs logprobs: true.', { param: 'top_logprobs' });
  return b.logprobs === true ? { top: b.top_logprobs ?? 0 } : undefined;
}

/** The sampling settings beyond temperature and top_p that the request sets to something other than neutral. */
function extraSampling(b: ChatBody): ExtraSampling {
  const out: ExtraSampling = {};
  if (b.top_k != null && b.top_k > 0) out.topK = b.top_k;
  if (b.min_p != null && b.min_p > 0) out.minP = b.min_p;
  if (b.presence_penalty != null && b.presence_penalty !== 0) out.presencePenalty = b.presence_penalty;
  if (b.frequency_penalty != null && b.frequency_penalty !== 0) out.frequencyPenalty = b.frequency_penalty;
  if (b.repetition_penalty != null && b.repetition_penalty !== 1) out.repetitionPenalty = b.repetition_penalty;
  return out;
}

/** tools, tool_choice, parallel_tool_calls and response_format, checked for sense; undefined when none is set. */
function toolOptions(b: ChatBody): GenerateRequest['toolOptions'] {
  const tools = b.tools?.length ? b.tools : undefined;
  checkToolChoice(typeof b.tool_choice === 'object' && b.tool_choice ? { name: b.tool_choice.function.name } : b.tool_choice, tools?.map((t) => t.function.name));
  const responseFormat = b.response_format && b.response_format.type !== 'text' ? b.response_format : undefined;
  if (!tools && !responseFormat) return undefined;
  return { tools, toolChoice: tools ? (b.tool_choice ?? undefined) : undefined, parallelToolCalls: tools ? (b.parallel_tool_calls ?? undefined) : undefined, responseFormat };
}

/** A Chat Completions body as the internal request; the route and async jobs share it. Throws GlimpseError. */
export function chatRequest(b: ChatBody, origin: RequestOrigin, defaults: RequestDefaults): GenerateRequest {
  const messages = toInternalMessages(b.messages);
  if (!messages.some((m) => m.role === 'user' && m.content.length)) {
    throw new GlimpseError('empty_messages', "'messages' must contain at least one user message with content.", { param: 'messages' });
  }
  const stop = b.stop == null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop;
  return {
    id: origin.id,
    // No model named: the default one, so every chunk and body names what answered.
    model: b.model || defaults.model,
    messages,
    stream: b.stream === true,
    thinking: resolveThinking({ thinking: b.thinking?.type, reasoningEffort: b.reasoning_effort ?? undefined, enableThinking: b.chat_template_kwargs?.enable_thinking }),
    templateArgs: checkTemplateArgs(b.chat_template_kwargs),
    toolOptions: toolOptions(b),
    logprobs: logprobsOption(b),
    sampling: {
      maxTokens: b.max_completion_tokens ?? b.max_tokens ?? defaults.maxTokens,
      temperature: b.temperature ?? 1,
      topP: b.top_p ?? 1,
      seed: b.seed ?? undefined,
      stop,
      ...extraSampling(b),
    },
    keyId: origin.keyId,
  };
}

export function registerOpenAIRoutes(app: FastifyInstance, deps: { config: Config; defaults: RequestDefaults; engine: Engine; pipeline: GenerationPipeline; schemas: Schemas }): void {
  const { config, defaults, engine, pipeline, schemas } = deps;

  const modelCards = () => {
    const info = engine.info();
    const created = Math.floor(Date.now() / 1000);
    return info.models.map((m) => ({
      id: m.id,
      object: 'model' as const,
      created,
      owned_by: m.ownedBy,
      ...(info.simulated ? { simulated: true } : {}),
      ...(m.contextLength ? { max_model_len: m.contextLength } : {}),
    }));
  };

  app.get('/v1/models', { schema: { tags: ['OpenAI'], summary: 'Models this server answers to' }, config: { errorFormat: 'openai' } }, async () => ({ object: 'list', data: modelCards() }));

  // One model (the SDKs' models.retrieve). Ids may hold slashes (zai-org/GLM-4.6V-Flash), sent as is or encoded.
  app.get<{ Params: { '*': string } }>('/v1/models/*', { schema: { tags: ['OpenAI'], summary: 'One model this server answers to' }, config: { errorFormat: 'openai' } }, async (request) => {
    // The router has already percent-decoded the wildcard (zai-org%2FGLM-4.6V-Flash arrives with its slash).
    const id = request.params['*'];
    const card = modelCards().find((m) => m.id === id);
    if (!card) throw new GlimpseError('model_not_found', `The model '${id}' does not exist here. Available: ${pipeline.modelIds().join(', ')}.`, { param: 'model' });
    return card;
  });

  app.post<{ Body: ChatBody }>(
    '/v1/chat/completions',
    {
      schema: { tags: ['OpenAI'], summary: 'OpenAI Chat Completions with image_url parts; SSE when stream is true', body: schemas.chatCompletions },
      config: { errorFormat: 'openai' },
    },
    async (request, reply) => {
      const b = request.body;
      const req = chatRequest(b, origin(request), defaults);
      const meta = { id: completionId(), created: Math.floor(Date.now() / 1000), model: req.model };
      if (!req.stream) return chatCompletion(meta, await collectAnswer(await openForBody(pipeline, request, reply, req)));

      const includeUsage = b.stream_options?.include_usage === true;
      let usage: Usage | undefined;
      await streamSse({ pipeline, config }, request, reply, req, {
        terminator: '[DONE]',
        start: (sse) => sse.json(chatChunk(meta, { role: 'assistant', content: '' })),
        event: async (sse, ev) => {
          if (ev.type === 'token') await sse.json(chatChunk(meta, { content: ev.text }, null, req.logprobs ? (ev.logprobs ?? []) : undefined));
          else if (ev.type === 'reasoning') await sse.json(chatChunk(meta, { reasoning_content: ev.text }));
          else if (ev.type === 'tool_call') await sse.json(chatChunk(meta, { tool_calls: [toolCallDelta(ev)] }));
          else if (ev.type === 'usage') usage = ev.usage;
          else if (ev.type === 'done' && ev.finishReason !== 'cancelled') {
            // As vLLM does: the finish chunk, then (when asked) one usage chunk with no choices.
            await sse.json(chatChunk(meta, { content: '' }, ev.finishReason));
            if (includeUsage && usage) await sse.json(chatUsageChunk(meta, usage));
          }
        },
        error: (sse, err) => sse.json(err.toOpenAI()),
      });
    },
  );
}
