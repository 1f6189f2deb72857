/** Chat Completions body → GenerateRequest. The route and async jobs share it. */
import {
  GlimpseError,
  type ChatMessage,
  type ContentPart,
  type ExtraSampling,
  type GenerateRequest,
} from '../../core/index.js';
import type { RequestDefaults, RequestOrigin } from '../defaults.js';
import { contentPart, internalRole, requireUserTurn, type WirePart } from '../messages.js';
import { pixelBounds } from '../fields.js';
import { checkTemplateArgs } from '../template-args.js';
import { resolveThinking } from '../thinking.js';
import { checkToolChoice } from '../tools.js';
import type { ChatBody } from './schema.js';

type ChatPart = Exclude<ChatBody['messages'][number]['content'], string | null | undefined>[number];

/** One OpenAI content part in the shape every dialect's parts take. */
function wirePart(p: ChatPart, at: string): WirePart {
  switch (p.type) {
    case 'text':
      return { text: p.text };
    case 'image_url':
      return typeof p.image_url === 'string'
        ? { imageUrl: p.image_url }
        : {
            imageUrl: p.image_url.url,
            detail: p.image_url.detail,
            budget: pixelBounds(p.image_url, `${at}.image_url`),
          };
    case 'video_url':
      return { videoUrl: typeof p.video_url === 'string' ? p.video_url : p.video_url.url };
    case 'file_url':
      return { fileUrl: p.file_url.url };
    case 'file':
      // Uploaded file ids name OpenAI's own file store, which glimpse does not have.
      if (!p.file.file_data)
        throw new GlimpseError(
          'invalid_request',
          `${at}.file needs file_data (a data URL such as data:application/pdf;base64,...); file_id is not supported.`,
          { param: `${at}.file` },
        );
      return { fileData: p.file.file_data, filename: p.file.filename };
  }
}

/** OpenAI messages → internal messages. `reasoning_content` of earlier turns is dropped, as GLM expects. */
export function toInternalMessages(messages: ChatBody['messages']): ChatMessage[] {
  return messages.map((m, i): ChatMessage => {
    const role = internalRole(m.role);
    const turn = { role, sentAs: m.role, at: `messages.${i}` };
    const content: ContentPart[] =
      m.content == null
        ? []
        : typeof m.content === 'string'
          ? [{ type: 'text', text: m.content }]
          : m.content.map((p, j) =>
              contentPart(
                wirePart(p, `messages.${i}.content.${j}`),
                turn,
                `messages.${i}`,
                `messages.${i}.content.${j}.${p.type}`,
              ),
            );
    if (role === 'tool') {
      if (!m.tool_call_id)
        throw new GlimpseError(
          'invalid_request',
          `messages.${i} is a tool result: it needs the tool_call_id of the call it answers.`,
          { param: `messages.${i}.tool_call_id` },
        );
      return { role, content, toolCallId: m.tool_call_id };
    }
    if (m.tool_calls?.length) {
      if (role !== 'assistant')
        throw new GlimpseError(
          'invalid_request',
          `Only assistant messages carry tool_calls (messages.${i} is '${m.role}').`,
          { param: `messages.${i}.tool_calls` },
        );
      return { role, content, toolCalls: m.tool_calls };
    }
    return { role, content };
  });
}

function logprobsOption(b: ChatBody): GenerateRequest['logprobs'] {
  if (b.top_logprobs != null && b.logprobs !== true)
    throw new GlimpseError('invalid_request', 'top_logprobs needs logprobs: true.', { param: 'top_logprobs' });
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
  checkToolChoice(
    typeof b.tool_choice === 'object' && b.tool_choice ? { name: b.tool_choice.function.name } : b.tool_choice,
    tools?.map((t) => t.function.name),
  );
  const responseFormat = b.response_format && b.response_format.type !== 'text' ? b.response_format : undefined;
  if (!tools && !responseFormat) return undefined;
  return {
    tools,
    toolChoice: tools ? (b.tool_choice ?? undefined) : undefined,
    parallelToolCalls: tools ? (b.parallel_tool_calls ?? undefined) : undefined,
    responseFormat,
  };
}

/** A Chat Completions body as the internal request; the route and async jobs share it. Throws GlimpseError. */
export function chatRequest(b: ChatBody, origin: RequestOrigin, defaults: RequestDefaults): GenerateRequest {
  const messages = toInternalMessages(b.messages);
  requireUserTurn(messages, "'messages' must contain at least one user message with content.", 'messages');
  const stop = b.stop == null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop;
  return {
    id: origin.id,
    // No model named: the default one, so every chunk and body names what answered.
    model: b.model || defaults.model,
    messages,
    thinking: resolveThinking({
      thinking: b.thinking?.type,
      reasoningEffort: b.reasoning_effort ?? undefined,
      enableThinking: b.chat_template_kwargs?.enable_thinking,
    }),
    templateArgs: checkTemplateArgs(b.chat_template_kwargs),
    toolOptions: toolOptions(b),
    logprobs: logprobsOption(b),
    imageBudget: pixelBounds(b),
    ...(b.glimpse_thumbnails ? { mediaThumbnails: true } : {}),
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
