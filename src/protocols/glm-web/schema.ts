/** The GLM-4.6V-Flash-WEB JSON shapes' request schemas. */
import { Type, type Static } from 'typebox';
import type { Config } from '../../config/index.js';
import { sharedFields } from '../fields.js';

export function glmSchemas(config: Config) {
  const { maxTokens, temperature, topP, prompt, imageString } = sharedFields(config);
  // The GLM-WEB JSON shapes share their sampling fields with multipart /infer and WebSocket
  // messages (request.ts glmSampling): max_tokens is taken as another name for max_new_tokens.
  const glmSamplingFields = {
    max_new_tokens: Type.Optional(maxTokens('max_new_tokens')),
    max_tokens: Type.Optional(maxTokens('max_tokens')),
    temperature: Type.Optional(temperature),
    top_p: Type.Optional(topP),
    seed: Type.Optional(Type.Integer()),
  };
  const multimodal = Type.Object({
    image: imageString,
    prompt,
    ...glmSamplingFields,
    model: Type.Optional(Type.String({ maxLength: 256 })),
  });
  const glmChat = Type.Object({ image_url: imageString, prompt, ...glmSamplingFields });
  const apiInfer = Type.Object({ image: imageString, prompt, ...glmSamplingFields });

  return { multimodal, glmChat, apiInfer };
}

type GlmSchemas = ReturnType<typeof glmSchemas>;
export type MultimodalBody = Static<GlmSchemas['multimodal']>;
export type GlmChatBody = Static<GlmSchemas['glmChat']>;
export type ApiInferBody = Static<GlmSchemas['apiInfer']>;
