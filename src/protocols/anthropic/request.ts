/** Anthropic Messages body → GenerateRequest: blocks as internal messages, tools in the chat shape engines speak, thinking on or off. */
import {
  GlimpseError,
  type ChatMessage,
  type ContentPart,
  type GenerateRequest,
  type ToolCall,
} from '../../core/index.js';
import type { RequestDefaults, RequestOrigin } from '../defaults.js';
import { imageSourceFromString } from '../images.js';
import { pixelBounds } from '../fields.js';
import { requireUserTurn } from '../messages.js';
import { checkToolChoice } from '../tools.js';
import type { CountTokensBody, MessagesBody } from './schema.js';

type Block = Exclude<MessagesBody['messages'][number]['content'], string>[number];
type ImageBlock = Extract<Block, { type: 'image' }>;

function imagePart(b: ImageBlock, param: string): ContentPart {
  const source =
    b.source.type === 'base64'
      ? imageSourceFromString(`data:${b.source.media_type};base64,${b.source.data}`, `${param}.source.data`)
      : imageSourceFromString(b.source.url, `${param}.source.url`);
  return { type: 'image', source };
}

/**
 * Messages as the model reads them. A user turn's tool_result blocks become tool messages (before
 * the rest of that turn, as Anthropic orders them); an assistant turn's tool_use blocks its tool
 * calls; thinking blocks of earlier turns are left out.
 */
export function toInternalMessages(b: Pick<CountTokensBody, 'messages' | 'system'>): ChatMessage[] {
  const out: ChatMessage[] = [];
  const system = typeof b.system === 'string' ? b.system : b.system?.map((s) => s.text).join('\n');
  if (system) out.push({ role: 'system', content: [{ type: 'text', text: system }] });
  b.messages.forEach((m, i) => {
    const blocks: Block[] = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    const content: ContentPart[] = [];
    const calls: ToolCall[] = [];
    blocks.forEach((block, j) => {
      const param = `messages.${i}.content.${j}`;
      const wrong = (what: string) =>
        new GlimpseError('invalid_request', `${param} is a ${block.type} block, which ${what}.`, {
          param: `${param}.type`,
        });
      switch (block.type) {
        case 'text':
          content.push({ type: 'text', text: block.text });
          break;
        case 'image':
          if (m.role !== 'user') throw wrong('only user messages carry');
          content.push(imagePart(block, param));
          break;
        case 'tool_use':
          if (m.role !== 'assistant') throw wrong('only assistant messages carry');
          calls.push({
            id: block.id,
            type: 'function',
            function: { name: block.name, arguments: JSON.stringify(block.input) },
          });
          break;
        case 'tool_result': {
          if (m.role !== 'user') throw wrong('only user messages carry');
          const parts: ContentPart[] =
            typeof block.content === 'string'
              ? [{ type: 'text', text: block.content }]
              : (block.content ?? []).map((p, k) =>
                  p.type === 'text' ? { type: 'text', text: p.text } : imagePart(p, `${param}.content.${k}`),
                );
          out.push({ role: 'tool', content: parts, toolCallId: block.tool_use_id });
          break;
        }
        default:
          // thinking and redacted_thinking of earlier turns: left out.
          break;
      }
    });
    if (content.length || calls.length)
      out.push({ role: m.role, content, ...(calls.length ? { toolCalls: calls } : {}) });
  });
  requireUserTurn(out, "'messages' must contain a user message with content.", 'messages');
  return out;
}

function toolOptions(b: CountTokensBody): GenerateRequest['toolOptions'] {
  const tools = b.tools?.length ? b.tools : undefined;
  const choice = b.tool_choice;
  checkToolChoice(
    choice?.type === 'tool' ? { name: choice.name } : choice?.type === 'any' ? 'required' : choice?.type,
    tools?.map((t) => t.name),
  );
  if (!tools) return undefined;
  return {
    tools: tools.map((t) => ({
      type: 'function',
      function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.input_schema },
    })),
    toolChoice:
      choice === undefined
        ? undefined
        : choice.type === 'tool'
          ? { type: 'function', function: { name: choice.name } }
          : choice.type === 'any'
            ? 'required'
            : choice.type,
    parallelToolCalls: choice?.disable_parallel_tool_use ? false : undefined,
  };
}

/** A Messages body as the internal request. Throws GlimpseError. */
export function messagesRequest(b: MessagesBody, origin: RequestOrigin, defaults: RequestDefaults): GenerateRequest {
  if (b.thinking?.type === 'enabled' && b.thinking.budget_tokens >= b.max_tokens) {
    throw new GlimpseError(
      'invalid_request',
      `thinking.budget_tokens (${b.thinking.budget_tokens}) must be less than max_tokens (${b.max_tokens}).`,
      { param: 'thinking.budget_tokens' },
    );
  }
  return {
    id: origin.id,
    model: b.model || defaults.model,
    messages: toInternalMessages(b),
    thinking: b.thinking ? b.thinking.type === 'enabled' : undefined,
    toolOptions: toolOptions(b),
    imageBudget: pixelBounds(b),
    sampling: {
      maxTokens: b.max_tokens,
      temperature: b.temperature ?? 1,
      topP: b.top_p ?? 1,
      stop: b.stop_sequences ?? [],
      ...(b.top_k ? { topK: b.top_k } : {}),
    },
    keyId: origin.keyId,
  };
}

/**
 * count_tokens: the prompt run through the one pipeline with one token to generate, so the count is
 * the engine's own (its tokenizer and image tokens), whatever the engine.
 */
export function countTokensRequest(
  b: CountTokensBody,
  origin: RequestOrigin,
  defaults: RequestDefaults,
): GenerateRequest {
  return {
    id: origin.id,
    model: b.model || defaults.model,
    messages: toInternalMessages(b),
    thinking: false,
    toolOptions: toolOptions(b),
    sampling: { maxTokens: 1, temperature: 0, topP: 1, stop: [] },
    keyId: origin.keyId,
  };
}
