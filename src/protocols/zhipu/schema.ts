/** Zhipu's chat request (`/api/paas/v4/chat/completions`): the OpenAI chat fields, with Zhipu's own beside them. */
import { Type, type Static } from 'typebox';
import type { Config } from '../../config/index.js';
import { chatSchemas } from '../openai-chat/schema.js';

/** What a client-chosen request id may look like (it becomes glimpse's request id and X-Request-Id). */
export const ZHIPU_REQUEST_ID = '^[\\w.:-]{6,64}$';

export function zhipuSchema(config: Config) {
  return Type.Object(
    {
      ...chatSchemas(config).fields,
      do_sample: Type.Optional(
        Type.Union([
          Type.Boolean({ description: 'false: greedy decoding (temperature and top_p are ignored).' }),
          Type.Null(),
        ]),
      ),
      request_id: Type.Optional(
        Type.Union([
          Type.String({
            pattern: ZHIPU_REQUEST_ID,
            description: "The caller's id for this request (6..64 of A-Z a-z 0-9 _ . : -): used as the request id.",
          }),
          Type.Null(),
        ]),
      ),
      user_id: Type.Optional(
        Type.Union([
          Type.String({
            minLength: 6,
            maxLength: 128,
            description: 'The end user: requests are queued fairly per end user of a key, and logged with it.',
          }),
          Type.Null(),
        ]),
      ),
      sensitive_word_check: Type.Optional(Type.Unknown()),
    },
    {
      description:
        "Zhipu's chat completions: OpenAI's fields plus thinking, do_sample, request_id and user_id; images as URLs, data URLs or bare base64.",
    },
  );
}

export type ZhipuBody = Static<ReturnType<typeof zhipuSchema>>;
