/**
 * Schema fields more than one dialect shares (TypeBox → JSON Schema: the same objects validate
 * requests and generate the OpenAPI document at /docs). Bounds come from config, so a limit has
 * one home.
 */
import { Type } from 'typebox';
import type { Config } from '../config/index.js';

export function sharedFields(config: Pick<Config, 'maxTokensLimit' | 'maxPromptChars'>) {
  return {
    maxTokens: (name: string) =>
      Type.Integer({
        minimum: 1,
        maximum: config.maxTokensLimit,
        description: `${name}: tokens to generate, 1..${config.maxTokensLimit}.`,
      }),
    temperature: Type.Number({ minimum: 0, maximum: 2, description: 'Sampling temperature, 0..2 (0 = greedy).' }),
    topP: Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Nucleus sampling mass, (0, 1].' }),
    prompt: Type.String({
      minLength: 1,
      maxLength: config.maxPromptChars,
      description: 'The question about the image.',
    }),
    imageString: Type.String({ minLength: 1, description: 'data URL, http(s) URL, or bare base64.' }),
  };
}
