/** Anthropic's Messages API request schema (`POST /v1/messages`, and `/v1/messages/count_tokens` without max_tokens). */
import { Type, type Static } from 'typebox';
import type { Config } from '../../config/index.js';
import { pixelBoundFields } from '../fields.js';

export function anthropicSchemas(config: Config) {
  const text = Type.String({ maxLength: config.maxPromptChars });
  const textBlock = Type.Object({ type: Type.Literal('text'), text, cache_control: Type.Optional(Type.Unknown()) });
  const imageBlock = Type.Object({
    type: Type.Literal('image'),
    source: Type.Union([
      Type.Object({
        type: Type.Literal('base64'),
        media_type: Type.Enum(['image/jpeg', 'image/png', 'image/gif', 'image/webp']),
        data: Type.String({ minLength: 1 }),
      }),
      Type.Object({ type: Type.Literal('url'), url: Type.String({ minLength: 1, maxLength: 8192 }) }),
    ]),
    cache_control: Type.Optional(Type.Unknown()),
  });
  const toolUse = Type.Object({
    type: Type.Literal('tool_use'),
    id: Type.String({ minLength: 1, maxLength: 256 }),
    name: Type.String({ minLength: 1, maxLength: 128 }),
    input: Type.Record(Type.String(), Type.Unknown()),
  });
  const toolResult = Type.Object({
    type: Type.Literal('tool_result'),
    tool_use_id: Type.String({ minLength: 1, maxLength: 256 }),
    content: Type.Optional(Type.Union([text, Type.Array(Type.Union([textBlock, imageBlock]), { maxItems: 64 })])),
    is_error: Type.Optional(Type.Boolean()),
  });
  // Thinking from an earlier assistant turn: accepted and left out, as chat templates drop it.
  const thinkingBlock = Type.Object({
    type: Type.Literal('thinking'),
    thinking: text,
    signature: Type.Optional(Type.String()),
  });
  const redactedThinking = Type.Object({ type: Type.Literal('redacted_thinking'), data: Type.String() });
  const message = Type.Object({
    role: Type.Enum(['user', 'assistant']),
    content: Type.Union([
      text,
      Type.Array(Type.Union([textBlock, imageBlock, toolUse, toolResult, thinkingBlock, redactedThinking]), {
        maxItems: 64,
      }),
    ]),
  });
  const tool = Type.Object({
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9_-]+$' }),
    description: Type.Optional(Type.String({ maxLength: config.maxPromptChars })),
    input_schema: Type.Record(Type.String(), Type.Unknown()),
    type: Type.Optional(Type.Literal('custom')),
  });
  const toolChoice = Type.Union([
    Type.Object({ type: Type.Enum(['auto', 'any', 'none']), disable_parallel_tool_use: Type.Optional(Type.Boolean()) }),
    Type.Object({
      type: Type.Literal('tool'),
      name: Type.String({ minLength: 1, maxLength: 64 }),
      disable_parallel_tool_use: Type.Optional(Type.Boolean()),
    }),
  ]);
  const thinking = Type.Union([
    Type.Object({
      type: Type.Literal('enabled'),
      budget_tokens: Type.Integer({
        minimum: 1024,
        maximum: config.maxTokensLimit,
        description:
          'At least 1024 and less than max_tokens. GLM has no thinking budget: any budget turns thinking on.',
      }),
    }),
    Type.Object({ type: Type.Literal('disabled') }),
  ]);
  const prompt = {
    model: Type.Optional(Type.String({ maxLength: 256 })),
    messages: Type.Array(message, { minItems: 1, maxItems: config.maxMessages }),
    system: Type.Optional(Type.Union([text, Type.Array(textBlock, { maxItems: 64 })])),
    tools: Type.Optional(Type.Array(tool, { maxItems: 128 })),
    tool_choice: Type.Optional(toolChoice),
    thinking: Type.Optional(thinking),
  };
  const messages = Type.Object(
    {
      ...prompt,
      max_tokens: Type.Integer({
        minimum: 1,
        maximum: config.maxTokensLimit,
        description: `Tokens to generate, 1..${config.maxTokensLimit} (required, as in Anthropic's API).`,
      }),
      temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      top_p: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
      top_k: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
      ...pixelBoundFields,
      stop_sequences: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 16 })),
      stream: Type.Optional(Type.Boolean()),
      metadata: Type.Optional(
        Type.Object({ user_id: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])) }),
      ),
    },
    {
      description:
        'Anthropic Messages request: text and image blocks, tools, thinking. Unknown fields are accepted and ignored.',
    },
  );
  const countTokens = Type.Object(prompt, {
    description: 'The prompt of a Messages request, to count its input tokens.',
  });
  return { messages, countTokens };
}

type Schemas = ReturnType<typeof anthropicSchemas>;
export type MessagesBody = Static<Schemas['messages']>;
export type CountTokensBody = Static<Schemas['countTokens']>;
