/**
 * GLM-4.6V-Flash-WEB bodies → GenerateRequest: one image, one prompt, the GLM sampling fields
 * (max_new_tokens, temperature 0.7 and top_p 1 unless given). WebSocket messages speak the same
 * fields (protocols/websocket).
 */
import {
  GlimpseError,
  type ContentPart,
  type GenerateRequest,
  type ImageSource,
  type SamplingParams,
} from '../../core/index.js';
import type { RequestDefaults, RequestOrigin } from '../defaults.js';
import { imageSourceFromString } from '../images.js';
import { checkPrompt, singleTurn } from '../messages.js';

/**
 * Sampling fields of the GLM-WEB shapes (max_new_tokens, temperature, top_p) for the routes whose
 * bodies no JSON schema sees: multipart /infer (every field a string) and WebSocket messages.
 * Same bounds and codes as the schema-validated routes.
 */
export function glmSampling(
  raw: { max_new_tokens?: unknown; max_tokens?: unknown; temperature?: unknown; top_p?: unknown },
  defaults: RequestDefaults,
  opts: { fromStrings?: boolean } = {},
): SamplingParams {
  const num = (v: unknown): unknown => (opts.fromStrings && typeof v === 'string' && v.trim() !== '' ? Number(v) : v);
  const maxRaw = raw.max_new_tokens ?? raw.max_tokens;
  const maxTokens = maxRaw == null ? defaults.maxTokens : num(maxRaw);
  if (
    typeof maxTokens !== 'number' ||
    !Number.isInteger(maxTokens) ||
    maxTokens < 1 ||
    maxTokens > defaults.maxTokensLimit
  ) {
    throw new GlimpseError(
      'invalid_max_tokens',
      `'max_new_tokens' must be an integer from 1 to ${defaults.maxTokensLimit} (got ${JSON.stringify(maxRaw)}).`,
      { param: 'max_new_tokens' },
    );
  }
  const temperature = raw.temperature == null ? 0.7 : num(raw.temperature);
  if (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= 2)) {
    throw new GlimpseError(
      'invalid_temperature',
      `'temperature' must be a number from 0 to 2 (got ${JSON.stringify(raw.temperature)}).`,
      { param: 'temperature' },
    );
  }
  const topP = raw.top_p == null ? 1 : num(raw.top_p);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) {
    throw new GlimpseError('invalid_top_p', `'top_p' must be a number in (0, 1] (got ${JSON.stringify(raw.top_p)}).`, {
      param: 'top_p',
    });
  }
  return { maxTokens, temperature, topP, stop: [] };
}

/** A JSON GLM-WEB body (schema-checked already): its image field, prompt, sampling and seed; the default model unless one is named. */
export function glmRequest(
  b: {
    prompt: string;
    model?: string;
    seed?: number;
    max_new_tokens?: number;
    max_tokens?: number;
    temperature?: number;
    top_p?: number;
  },
  image: { value: string; param: string },
  origin: RequestOrigin,
  defaults: RequestDefaults,
): GenerateRequest {
  return single(origin, defaults, {
    model: b.model,
    prompt: b.prompt,
    image: imageSourceFromString(image.value, image.param),
    sampling: { ...glmSampling(b, defaults), seed: b.seed },
  });
}

/** Multipart /infer: every field a string, the image an uploaded file (or a string field); nothing checked yet. */
export function inferRequest(
  fields: Record<string, string>,
  file: ContentPart | undefined,
  origin: RequestOrigin,
  defaults: RequestDefaults,
): GenerateRequest {
  const image = file ?? (fields.image ? imageSourceFromString(fields.image, 'image') : undefined);
  if (!image)
    throw new GlimpseError('missing_image', "Send the image as a multipart file field named 'image'.", {
      param: 'image',
    });
  const prompt = checkPrompt(
    fields.prompt ?? fields.question,
    defaults.maxPromptChars,
    "Send the question as a multipart field named 'prompt'.",
  );
  return single(origin, defaults, { prompt, image, sampling: glmSampling(fields, defaults, { fromStrings: true }) });
}

/** One question about one image, as a request. */
export function single(
  origin: RequestOrigin,
  defaults: RequestDefaults,
  f: {
    model?: string;
    prompt: string;
    image?: ImageSource | ContentPart;
    system?: string;
    sampling: SamplingParams;
    thinking?: boolean;
  },
): GenerateRequest {
  return {
    id: origin.id,
    model: f.model || defaults.model,
    messages: singleTurn(f.prompt, f.image, f.system),
    sampling: f.sampling,
    thinking: f.thinking,
    keyId: origin.keyId,
  };
}
