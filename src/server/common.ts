import type { Config } from '../config/index.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GlimpseError, type ImageSource, type GenerateRequest, type ChatMessage, type SamplingParams } from '../core/index.js';

const BASE64_RE = /^[A-Za-z0-9+/\s]+={0,2}\s*$/;

/**
 * An image given as one string: a data URL, an http(s) URL, or bare base64.
 * Anything else (file:, ftp:, gopher:, a path) is refused before any work.
 */
export function imageSourceFromString(value: string, param: string): ImageSource {
  const s = value.trim();
  if (!s) throw new GlimpseError('missing_image', `'${param}' is empty: send a data URL, an http(s) URL or base64.`, { param });
  if (/^data:/i.test(s)) return { kind: 'dataUrl', url: s };
  if (/^https?:\/\//i.test(s)) {
    try {
      new URL(s);
    } catch {
      throw new GlimpseError('invalid_image_url', `'${param}' is not a valid URL.`, { param });
    }
    return { kind: 'url', url: s };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(s) && !BASE64_RE.test(s)) {
    throw new GlimpseError('invalid_image_url', `'${param}' must be a data URL, an http(s) URL or base64; other URL schemes are not fetched.`, { param });
  }
  if (!BASE64_RE.test(s.slice(0, 4096))) {
    throw new GlimpseError('invalid_image_url', `'${param}' is neither a URL nor base64.`, { param });
  }
  return { kind: 'base64', data: s };
}

/** An AbortSignal that fires when the client goes away before the response is finished. */
export function clientGoneSignal(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) ac.abort();
  };
  reply.raw.once('close', onClose);
  request.raw.once('aborted', () => ac.abort());
  return ac.signal;
}

export function singleTurn(prompt: string, image: ImageSource | undefined, system?: string): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (system) messages.push({ role: 'system', content: [{ type: 'text', text: system }] });
  messages.push({
    role: 'user',
    content: [...(image ? [{ type: 'image' as const, source: image }] : []), { type: 'text' as const, text: prompt }],
  });
  return messages;
}

export function makeRequest(request: FastifyRequest, fields: { model?: string; messages: ChatMessage[]; sampling: SamplingParams; stream: boolean; thinking?: boolean }): GenerateRequest {
  return {
    id: String(request.id),
    model: fields.model ?? '',
    messages: fields.messages,
    sampling: fields.sampling,
    stream: fields.stream,
    thinking: fields.thinking,
    keyId: request.keyId,
  };
}

/** Sets X-Glimpse-Cache (hit|miss|bypass) on the reply; SSE routes pick it up through pendingHeaders. */
export function cacheHeader(reply: FastifyReply): (status: 'hit' | 'miss' | 'bypass') => void {
  return (status) => {
    reply.header('x-glimpse-cache', status);
  };
}

/** Headers fastify would have sent, for responses we write ourselves (SSE). */
export function pendingHeaders(reply: FastifyReply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : String(v);
  return out;
}

/**
 * Sampling fields of the GLM-WEB shapes (max_new_tokens, temperature, top_p) for the routes whose
 * bodies no JSON schema sees: multipart /infer (every field a string) and WebSocket messages.
 * Same bounds and codes as the schema-validated routes.
 */
export function glmSampling(
  raw: { max_new_tokens?: unknown; max_tokens?: unknown; temperature?: unknown; top_p?: unknown },
  config: Config,
  opts: { fromStrings?: boolean; defaultMaxTokens?: number } = {},
): SamplingParams {
  const num = (v: unknown): unknown => (opts.fromStrings && typeof v === 'string' && v.trim() !== '' ? Number(v) : v);
  const maxRaw = raw.max_new_tokens ?? raw.max_tokens;
  const maxTokens = maxRaw == null ? (opts.defaultMaxTokens ?? 512) : num(maxRaw);
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > config.maxTokensLimit) {
    throw new GlimpseError('invalid_max_tokens', `'max_new_tokens' must be an integer from 1 to ${config.maxTokensLimit} (got ${JSON.stringify(maxRaw)}).`, { param: 'max_new_tokens' });
  }
  const temperature = raw.temperature == null ? 0.7 : num(raw.temperature);
  if (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= 2)) {
    throw new GlimpseError('invalid_temperature', `'temperature' must be a number from 0 to 2 (got ${JSON.stringify(raw.temperature)}).`, { param: 'temperature' });
  }
  const topP = raw.top_p == null ? 1 : num(raw.top_p);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) {
    throw new GlimpseError('invalid_top_p', `'top_p' must be a number in (0, 1] (got ${JSON.stringify(raw.top_p)}).`, { param: 'top_p' });
  }
  return { maxTokens, temperature, topP, stop: [] };
}

/**
 * tool_choice makes sense only with tools, and a function it names must be one of them. Both
 * OpenAI shapes check it here: chat ({function: {name}}) and responses ({name}) pass the name.
 */
export function checkToolChoice(choice: string | { name: string } | null | undefined, toolNames: readonly string[] | undefined): void {
  if (choice == null || choice === 'none') return;
  if (!toolNames?.length) throw new GlimpseError('invalid_request', "tool_choice needs tools: name the functions the model may call in 'tools'.", { param: 'tool_choice' });
  if (typeof choice === 'object' && !toolNames.includes(choice.name)) {
    throw new GlimpseError('invalid_request', `tool_choice names '${choice.name}', which is not in 'tools'.`, { param: 'tool_choice' });
  }
}
