/**
 * Schema fields more than one dialect shares (TypeBox → JSON Schema: the same objects validate
 * requests and generate the OpenAPI document at /docs). Bounds come from config, so a limit has
 * one home.
 */
import { Type } from 'typebox';
import type { Config } from '../config/index.js';
import { GlimpseError, type ImageBudget } from '../core/index.js';

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

/**
 * Qwen2-VL / GLM-V style image bounds (min_pixels, max_pixels), as request extras and inside an
 * image part (whose pair replaces the request's): positive integers here, min not above max in
 * pixelBounds; how far they reach is the server's image bound, not the schema's (images/budget.ts).
 */
export const pixelBoundFields = {
  min_pixels: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: "Each image gets at least this many pixels (a small one is enlarged), up to the server's bound.",
    }),
  ),
  max_pixels: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: "Each image gets at most this many pixels (sides on the model's grid, 28 px for GLM-4.6V).",
    }),
  ),
};

/** The bounds a body (or an image part at `at`) gives, in the internal shape; undefined when it gives none. */
export function pixelBounds(b: { min_pixels?: number; max_pixels?: number }, at?: string): ImageBudget | undefined {
  if (b.min_pixels === undefined && b.max_pixels === undefined) return undefined;
  if (b.min_pixels !== undefined && b.max_pixels !== undefined && b.min_pixels > b.max_pixels) {
    const param = at ? `${at}.min_pixels` : 'min_pixels';
    throw new GlimpseError(
      'invalid_image_budget',
      `${param} (${b.min_pixels}) is above max_pixels (${b.max_pixels}): no image size is both.`,
      { param },
    );
  }
  return {
    ...(b.min_pixels !== undefined ? { minPixels: b.min_pixels } : {}),
    ...(b.max_pixels !== undefined ? { maxPixels: b.max_pixels } : {}),
  };
}
