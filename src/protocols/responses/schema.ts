/** The Responses API request schema (`POST /v1/responses`). Unknown fields are accepted and ignored. */
import { Type, type Static } from 'typebox';
import type { Config } from '../../config/index.js';
import { pixelBoundFields } from '../fields.js';
import { REASONING_EFFORTS } from '../thinking.js';

export function responsesSchema(config: Config) {
  const text = Type.String({ maxLength: config.maxPromptChars });
  const part = Type.Union([
    Type.Object({ type: Type.Literal('input_text'), text }),
    Type.Object({
      type: Type.Literal('input_image'),
      image_url: Type.Optional(Type.String({ minLength: 1 })),
      file_id: Type.Optional(Type.String()),
      detail: Type.Optional(Type.Enum(['low', 'high', 'auto'])),
      ...pixelBoundFields,
    }),
    // A document as this API sends one: file_data (a data URL) or file_url.
    Type.Object({
      type: Type.Literal('input_file'),
      file_data: Type.Optional(Type.String({ minLength: 1 })),
      file_url: Type.Optional(Type.String({ minLength: 1 })),
      file_id: Type.Optional(Type.String()),
      filename: Type.Optional(Type.String({ maxLength: 256 })),
    }),
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
  const reasoningItem = Type.Object(
    { type: Type.Literal('reasoning'), id: Type.Optional(Type.String()) },
    { additionalProperties: true },
  );
  // An item of an earlier response, by its id (what the AI SDK sends back with store: true): looked up in the store.
  const itemReference = Type.Object({
    type: Type.Literal('item_reference'),
    id: Type.String({ minLength: 1, maxLength: 256 }),
  });
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
      input: Type.Union([
        Type.String({ minLength: 1, maxLength: config.maxPromptChars }),
        Type.Array(Type.Union([message, functionCall, functionOutput, reasoningItem, itemReference]), {
          minItems: 1,
          maxItems: config.maxMessages,
        }),
      ]),
      instructions: Type.Optional(Type.Union([text, Type.Null()])),
      max_output_tokens: Type.Optional(
        Type.Union([Type.Integer({ minimum: 1, maximum: config.maxTokensLimit }), Type.Null()]),
      ),
      temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
      top_p: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 1 }), Type.Null()])),
      ...pixelBoundFields,
      stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
      store: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
      previous_response_id: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 256 }), Type.Null()])),
      tools: Type.Optional(Type.Array(functionTool, { maxItems: 128 })),
      tool_choice: Type.Optional(
        Type.Union([
          Type.Enum(['none', 'auto', 'required']),
          Type.Object({ type: Type.Literal('function'), name: Type.String({ minLength: 1, maxLength: 64 }) }),
        ]),
      ),
      parallel_tool_calls: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
      reasoning: Type.Optional(
        Type.Union([
          Type.Object({
            effort: Type.Optional(
              Type.Union([
                Type.Enum([...REASONING_EFFORTS], {
                  description: "'none' and 'minimal' turn thinking off, the others on.",
                }),
                Type.Null(),
              ]),
            ),
            summary: Type.Optional(
              Type.Union([
                Type.Enum(['auto', 'concise', 'detailed'], {
                  description: "A summary of the reasoning: the model's own reasoning text is sent as the summary.",
                }),
                Type.Null(),
              ]),
            ),
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
    {
      description:
        'OpenAI Responses request: text and image inputs, text output. Unknown fields are accepted and ignored.',
    },
  );
}

export type ResponsesBody = Static<ReturnType<typeof responsesSchema>>;
/** An input item as the client may send it (an item_reference among them). */
export type SentItem = Exclude<ResponsesBody['input'], string>[number];
/** An input item as the model reads it: references resolved. */
export type InputItem = Exclude<SentItem, { type: 'item_reference' }>;
