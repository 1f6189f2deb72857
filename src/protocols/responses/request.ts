/** Responses API body → GenerateRequest: input items (with a stored conversation's before them) as messages, text.format and tools in the chat shape engines speak. */
import {
  GlimpseError,
  type ChatMessage,
  type ContentPart,
  type GenerateRequest,
  type ToolCall,
} from '../../core/index.js';
import { randomHex } from '../../core/ids.js';
import type { RequestDefaults, RequestOrigin } from '../defaults.js';
import { pixelBounds } from '../fields.js';
import { contentPart, internalRole, requireUserTurn } from '../messages.js';
import { resolveThinking } from '../thinking.js';
import { checkToolChoice } from '../tools.js';
import type { InputItem, ResponsesBody, SentItem } from './schema.js';

/** Ids of items and responses: a type prefix and 24 hex digits, as OpenAI's look. */
export const hex = () => randomHex(12);

const ID_PREFIX: Record<string, string> = { function_call: 'fc_', function_call_output: 'fco_', reasoning: 'rs_' };

/**
 * The request's input as items with ids and types, as a stored response keeps them and input_items
 * lists them: a message is `type: "message"` with typed parts (a string becomes one input_text
 * part, or output_text for an assistant turn), so clients that filter on item.type find them.
 */
export function inputItems(b: ResponsesBody): SentItem[] {
  if (typeof b.input === 'string')
    return [{ id: 'msg_' + hex(), type: 'message', role: 'user', content: [{ type: 'input_text', text: b.input }] }];
  return b.input.map((m): SentItem =>
    m.type === 'item_reference'
      ? m
      : typedItem({ ...m, id: m.id ?? (ID_PREFIX[m.type ?? 'message'] ?? 'msg_') + hex() }),
  );
}

/** A message item with its type and typed parts (also for items stored before they were kept so); other items as they are. */
export function typedItem<T extends { type?: string; role?: string; content?: unknown }>(m: T): T {
  if (m.type !== undefined && m.type !== 'message') return m;
  const content =
    typeof m.content === 'string'
      ? [
          m.role === 'assistant'
            ? { type: 'output_text', text: m.content, annotations: [] }
            : { type: 'input_text', text: m.content },
        ]
      : m.content;
  return { ...m, type: 'message', content };
}

/**
 * item_reference items replaced by the items they name, found by `lookup` (the store, for the
 * caller's API key only: another key's item is as unknown as one never stored).
 */
export async function resolveItemReferences(
  items: SentItem[],
  lookup: (ids: string[]) => Promise<Map<string, Record<string, unknown>>>,
): Promise<InputItem[]> {
  const ids = items.flatMap((m) => (m.type === 'item_reference' ? [m.id] : []));
  const found = ids.length ? await lookup([...new Set(ids)]) : new Map<string, Record<string, unknown>>();
  return items.map((m, i) => {
    if (m.type !== 'item_reference') return m;
    const item = found.get(m.id);
    if (!item) {
      throw new GlimpseError(
        'item_reference_not_found',
        `input.${i} refers to item '${m.id}', which is not stored here (never stored, expired, deleted, made with another API key, or store was false); send the item itself instead.`,
        { param: `input.${i}.id` },
      );
    }
    return item as InputItem;
  });
}

/** `items`: the earlier turns of a continued conversation (`historyItems` of them), then this request's input. */
export function responsesRequest(
  b: ResponsesBody,
  items: InputItem[],
  historyItems: number,
  origin: RequestOrigin,
  defaults: RequestDefaults,
): GenerateRequest {
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
    const role = internalRole(m.role);
    const turn = { role, sentAs: m.role, at: `input.${i - historyItems}` };
    const content: ContentPart[] =
      typeof m.content === 'string'
        ? [{ type: 'text', text: m.content }]
        : m.content.map((p, j): ContentPart => {
            // Named as the client sent it (earlier turns were checked when they were sent).
            const param = `input.${i - historyItems}.content.${j}`;
            if (p.type === 'input_file') {
              const file = p.file_data ?? p.file_url;
              if (!file)
                throw new GlimpseError(
                  'invalid_request',
                  `${param} needs file_data (a data URL such as data:application/pdf;base64,...) or file_url; uploaded file ids are not kept here.`,
                  { param },
                );
              return contentPart(
                p.file_data ? { fileData: file, filename: p.filename } : { fileUrl: file, filename: p.filename },
                turn,
                param,
                `${param}.${p.file_data ? 'file_data' : 'file_url'}`,
              );
            }
            if (p.type !== 'input_image') return contentPart({ text: p.text }, turn, param);
            if (role === 'user' && !p.image_url)
              throw new GlimpseError(
                'missing_image',
                `${param} needs an image_url (a data URL or an http(s) URL); uploaded file ids are not kept here.`,
                { param: `${param}.image_url` },
              );
            return contentPart(
              { imageUrl: p.image_url ?? '', detail: p.detail, budget: pixelBounds(p, param) },
              turn,
              param,
              `${param}.image_url`,
            );
          });
    messages.push({ role, content });
  });
  requireUserTurn(messages, "'input' must contain a user message with content.", 'input');
  const effort = b.reasoning?.effort;
  return {
    toolOptions: toolOptions(b),
    id: origin.id,
    model: b.model || defaults.model,
    messages,
    thinking: resolveThinking({ reasoningEffort: effort ?? undefined }),
    imageBudget: pixelBounds(b),
    sampling: {
      maxTokens: b.max_output_tokens ?? defaults.maxTokens,
      temperature: b.temperature ?? 1,
      topP: b.top_p ?? 1,
      stop: [],
    },
    keyId: origin.keyId,
  };
}

/** tools, tool_choice, parallel_tool_calls and text.format in the chat shape, which is what engines speak; undefined when none is set. */
function toolOptions(b: ResponsesBody): GenerateRequest['toolOptions'] {
  const tools = b.tools?.length ? b.tools : undefined;
  checkToolChoice(
    b.tool_choice,
    tools?.map((t) => t.name),
  );
  const responseFormat = chatResponseFormat(b.text?.format);
  if (!tools && !responseFormat) return undefined;
  return {
    tools: tools?.map((t) => ({
      type: 'function',
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        ...(t.parameters ? { parameters: t.parameters } : {}),
        ...(t.strict != null ? { strict: t.strict } : {}),
      },
    })),
    toolChoice: tools
      ? typeof b.tool_choice === 'object'
        ? { type: 'function', function: { name: b.tool_choice.name } }
        : (b.tool_choice ?? undefined)
      : undefined,
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
