/** The Chat Completions request schema, and the async job's (the same fields and a webhook). */
import { Type, type Static } from 'typebox';
import type { Config } from '../../config/index.js';
import { pixelBoundFields, sharedFields } from '../fields.js';
import { REASONING_EFFORTS } from '../thinking.js';

export function chatSchemas(config: Config) {
  const { maxTokens, temperature, topP, imageString } = sharedFields(config);
  const textPart = Type.Object({ type: Type.Literal('text'), text: Type.String({ maxLength: config.maxPromptChars }) });
  const imageUrlPart = Type.Object({
    type: Type.Literal('image_url'),
    image_url: Type.Union([
      Type.Object({
        url: imageString,
        detail: Type.Optional(
          Type.Enum(['low', 'high', 'auto'], {
            description: "OpenAI's detail: low = one 512 px view; high/auto = the model's own size.",
          }),
        ),
        ...pixelBoundFields,
      }),
      imageString,
    ]),
  });
  // Documents as OpenAI sends them (file_data, a data URL) and as Zhipu does (file_url); videos as vLLM and Zhipu do.
  const filePart = Type.Object({
    type: Type.Literal('file'),
    file: Type.Object({
      file_data: Type.Optional(imageString),
      file_id: Type.Optional(Type.String()),
      filename: Type.Optional(Type.String({ maxLength: 256 })),
    }),
  });
  const fileUrlPart = Type.Object({ type: Type.Literal('file_url'), file_url: Type.Object({ url: imageString }) });
  const videoUrlPart = Type.Object({
    type: Type.Literal('video_url'),
    video_url: Type.Union([Type.Object({ url: imageString }), imageString]),
  });
  const toolCall = Type.Object({
    id: Type.String({ minLength: 1, maxLength: 256 }),
    type: Type.Literal('function'),
    function: Type.Object({
      name: Type.String({ minLength: 1, maxLength: 256 }),
      arguments: Type.String({ maxLength: config.maxPromptChars }),
    }),
  });
  const message = Type.Object({
    role: Type.Enum(['system', 'developer', 'user', 'assistant', 'tool']),
    content: Type.Optional(
      Type.Union([
        Type.String({ maxLength: config.maxPromptChars }),
        Type.Array(Type.Union([textPart, imageUrlPart, filePart, fileUrlPart, videoUrlPart]), { maxItems: 64 }),
        Type.Null(),
      ]),
    ),
    reasoning_content: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    name: Type.Optional(Type.String()),
    tool_calls: Type.Optional(Type.Union([Type.Array(toolCall, { maxItems: 128 }), Type.Null()])),
    tool_call_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  });
  // Function tools as OpenAI defines them; `parameters` is a JSON Schema, passed on as given.
  const tool = Type.Object({
    type: Type.Literal('function'),
    function: Type.Object({
      name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9_-]+$' }),
      description: Type.Optional(Type.String({ maxLength: config.maxPromptChars })),
      parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    }),
  });
  const toolChoice = Type.Union([
    Type.Enum(['none', 'auto', 'required']),
    Type.Object({
      type: Type.Literal('function'),
      function: Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }),
    }),
  ]);
  const responseFormat = Type.Union([
    Type.Object({ type: Type.Enum(['text', 'json_object']) }),
    Type.Object({
      type: Type.Literal('json_schema'),
      json_schema: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 64 }),
        description: Type.Optional(Type.String()),
        schema: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
      }),
    }),
  ]);

  const chatFields = {
    model: Type.Optional(Type.String({ maxLength: 256 })),
    messages: Type.Array(message, { minItems: 1, maxItems: config.maxMessages }),
    max_tokens: Type.Optional(Type.Union([maxTokens('max_tokens'), Type.Null()])),
    max_completion_tokens: Type.Optional(Type.Union([maxTokens('max_completion_tokens'), Type.Null()])),
    temperature: Type.Optional(Type.Union([temperature, Type.Null()])),
    top_p: Type.Optional(Type.Union([topP, Type.Null()])),
    seed: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    logprobs: Type.Optional(
      Type.Union([Type.Boolean({ description: "Return each answer token's log probability." }), Type.Null()]),
    ),
    top_logprobs: Type.Optional(
      Type.Union([
        Type.Integer({
          minimum: 0,
          maximum: 20,
          description: 'With logprobs: this many most likely alternatives per token (0..20).',
        }),
        Type.Null(),
      ]),
    ),
    presence_penalty: Type.Optional(
      Type.Union([
        Type.Number({
          minimum: -2,
          maximum: 2,
          description: 'Lowers the odds of tokens the answer already has, once each (-2..2).',
        }),
        Type.Null(),
      ]),
    ),
    frequency_penalty: Type.Optional(
      Type.Union([
        Type.Number({
          minimum: -2,
          maximum: 2,
          description: 'Lowers the odds of tokens the answer already has, per occurrence (-2..2).',
        }),
        Type.Null(),
      ]),
    ),
    // Beyond OpenAI, as vLLM and SGLang take them.
    ...pixelBoundFields,
    glimpse_thumbnails: Type.Optional(
      Type.Boolean({
        description:
          "glimpse: add small JPEG views of each document page and video frame to the answer's glimpse_media.",
      }),
    ),
    top_k: Type.Optional(
      Type.Union([
        Type.Integer({
          minimum: -1,
          maximum: 1_000_000,
          description: 'Sample from the k most likely tokens only (0 or -1: all).',
        }),
        Type.Null(),
      ]),
    ),
    min_p: Type.Optional(
      Type.Union([
        Type.Number({
          minimum: 0,
          maximum: 1,
          description: 'Drop tokens less likely than min_p times the most likely one (0..1).',
        }),
        Type.Null(),
      ]),
    ),
    repetition_penalty: Type.Optional(
      Type.Union([
        Type.Number({
          exclusiveMinimum: 0,
          maximum: 2,
          description: 'Divides the logits of tokens already in the prompt or answer (1 = off; (0, 2]).',
        }),
        Type.Null(),
      ]),
    ),
    stop: Type.Optional(
      Type.Union([
        Type.String({ maxLength: 256 }),
        Type.Array(Type.String({ maxLength: 256 }), { maxItems: 16 }),
        Type.Null(),
      ]),
    ),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    stream_options: Type.Optional(
      Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }), Type.Null()]),
    ),
    n: Type.Optional(Type.Union([Type.Literal(1), Type.Null()])),
    thinking: Type.Optional(
      Type.Object(
        { type: Type.Enum(['enabled', 'disabled']) },
        { description: "Zhipu's spelling: whether the model thinks before answering (absent: the model's default)." },
      ),
    ),
    reasoning_effort: Type.Optional(
      Type.Union([
        Type.Enum([...REASONING_EFFORTS], {
          description: "OpenAI's spelling: 'none' and 'minimal' turn thinking off, the others on.",
        }),
        Type.Null(),
      ]),
    ),
    chat_template_kwargs: Type.Optional(
      Type.Union([
        Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
          maxProperties: 32,
          description:
            "vLLM's and SGLang's spelling: variables for the model's chat template, e.g. {\"enable_thinking\": false}; passed on to the model's template.",
        }),
        Type.Null(),
      ]),
    ),
    tools: Type.Optional(Type.Union([Type.Array(tool, { maxItems: 128 }), Type.Null()])),
    tool_choice: Type.Optional(Type.Union([toolChoice, Type.Null()])),
    parallel_tool_calls: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    response_format: Type.Optional(Type.Union([responseFormat, Type.Null()])),
  };
  const chatCompletions = Type.Object(chatFields, {
    description: 'OpenAI Chat Completions request. Unknown OpenAI fields are accepted and ignored.',
  });
  const job = Type.Object(
    {
      ...chatFields,
      webhook: Type.Optional(
        Type.String({
          maxLength: 2048,
          description:
            "http(s) URL that gets the job's end as a signed Standard Webhooks event (job.succeeded, job.failed, job.cancelled).",
        }),
      ),
    },
    {
      description:
        'A Chat Completions request to run in the background (stream is ignored), and optionally where to announce its end.',
    },
  );

  return { chatCompletions, job, fields: chatFields };
}

export type ChatBody = Static<ReturnType<typeof chatSchemas>['chatCompletions']>;
