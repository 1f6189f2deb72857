import type { RequestDefaults, RequestOrigin } from '../protocols/defaults.js';
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

/** Who asked, as every mapper takes it. */
export function origin(request: FastifyRequest): RequestOrigin {
  return { id: String(request.id), keyId: request.keyId };
}

/** A single-turn GLM-WEB request: the default model unless one is named. */
export function makeRequest(origin: RequestOrigin, defaults: RequestDefaults, fields: { model?: string; messages: ChatMessage[]; sampling: SamplingParams; stream: boolean; thinking?: boolean }): GenerateRequest {
  return {
    id: origin.id,
    model: fields.model || defaults.model,
    messages: fields.messages,
    sampling: fields.sampling,
    stream: fields.stream,
    thinking: fields.thinking,
    keyId: origin.keyId,
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
  defaults: RequestDefaults,
  opts: { fromStrings?: boolean } = {},
): SamplingParams {
  const num = (v: unknown): unknown => (opts.fromStrings && typeof v === 'string' && v.trim() !== '' ? Number(v) : v);
  const maxRaw = raw.max_new_tokens ?? raw.max_tokens;
  const maxTokens = maxRaw == null ? defaults.maxTokens : num(maxRaw);
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > defaults.maxTokensLimit) {
    throw new GlimpseError('invalid_max_tokens', `'max_new_tokens' must be an integer from 1 to ${defaults.maxTokensLimit} (got ${JSON.stringify(maxRaw)}).`, { param: 'max_new_tokens' });
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

/** OpenAI's reasoning effort levels (chat's reasoning_effort, the Responses API's reasoning.effort): 'none' and 'minimal' mean no thinking. */
export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;

/** The ways a client may say whether the model should think, each as its ecosystem spells it. */
export interface ThinkingAsked {
  /** Zhipu's API and glimpse's own shapes: thinking: {type: 'enabled' | 'disabled'}. */
  thinking?: 'enabled' | 'disabled';
  /** OpenAI's reasoning_effort: 'none' and 'minimal' ask for no thinking, the rest for thinking. */
  reasoningEffort?: string;
  /** vLLM's and SGLang's chat_template_kwargs.enable_thinking. */
  enableThinking?: unknown;
}

/**
 * One answer from up to three spellings: true, false, or undefined (the model's default). Two
 * spellings that disagree are refused rather than one silently winning.
 */
export function resolveThinking(asked: ThinkingAsked): boolean | undefined {
  if (asked.enableThinking !== undefined && typeof asked.enableThinking !== 'boolean') {
    throw new GlimpseError('invalid_request', 'chat_template_kwargs.enable_thinking must be true or false.', { param: 'chat_template_kwargs.enable_thinking' });
  }
  const said: Array<[string, boolean]> = [];
  if (asked.thinking) said.push(['thinking.type', asked.thinking === 'enabled']);
  if (asked.reasoningEffort) said.push(['reasoning_effort', asked.reasoningEffort !== 'none' && asked.reasoningEffort !== 'minimal']);
  if (typeof asked.enableThinking === 'boolean') said.push(['chat_template_kwargs.enable_thinking', asked.enableThinking]);
  const [first, ...rest] = said;
  const clash = rest.find(([, v]) => v !== first![1]);
  if (clash) {
    throw new GlimpseError('invalid_request', `${first![0]} and ${clash[0]} disagree on whether the model should think; send one of them.`, { param: clash[0] });
  }
  return first?.[1];
}

// Names the template engine itself fills in or reads as options: a client may not replace them.
const RESERVED_TEMPLATE_ARGS = new Set([
  'messages', 'tools', 'documents', 'add_generation_prompt', 'continue_final_message', 'chat_template', 'tokenize', 'padding',
  'truncation', 'max_length', 'return_tensor', 'return_tensors', 'return_dict', 'tokenizer_kwargs', 'raise_exception', 'strftime_now',
]);
const TEMPLATE_ARG_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
export const MAX_TEMPLATE_ARGS_BYTES = 4096;

/**
 * chat_template_kwargs beyond enable_thinking (which resolveThinking reads): plain names, not one
 * the template engine owns (messages, add_generation_prompt, special tokens, ...), JSON values,
 * 4 KiB in all. Returns them without enable_thinking, or undefined when none are left.
 */
export function checkTemplateArgs(args: Record<string, unknown> | null | undefined): Record<string, unknown> | undefined {
  if (args == null) return undefined;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args)) {
    if (name === 'enable_thinking') continue;
    if (!TEMPLATE_ARG_NAME.test(name) || RESERVED_TEMPLATE_ARGS.has(name) || name.endsWith('_token')) {
      throw new GlimpseError('invalid_request', `chat_template_kwargs may not set '${name.slice(0, 64)}': names are letters, digits and _, and not one the template engine fills in itself.`, { param: 'chat_template_kwargs' });
    }
    out[name] = value;
  }
  if (Buffer.byteLength(JSON.stringify(out)) > MAX_TEMPLATE_ARGS_BYTES) {
    throw new GlimpseError('invalid_request', `chat_template_kwargs is over ${MAX_TEMPLATE_ARGS_BYTES} bytes as JSON.`, { param: 'chat_template_kwargs' });
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * Refuses JSON text nested deeper than `max` levels of objects and arrays (`maxJsonDepth`), before
 * it is parsed, naming the top-level field it is in. Free-form fields (tool parameters, JSON
 * schemas, chat_template_kwargs) are copied, serialised and hashed on their way to a model, and
 * recursion over a value nested thousands deep overflows the stack. One pass over the text:
 * strings (base64 images are most of a body) are skipped with indexOf, so the check costs a small
 * fraction of JSON.parse. Malformed text is left for JSON.parse to refuse.
 */
export function checkJsonDepth(text: string, max: number, what: string): void {
  let depth = 0;
  let rootIsObject = false;
  let expectKey = false;
  let field: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end < 0) return;
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      if (expectKey) {
        try {
          field = JSON.parse(text.slice(i, end + 1)) as string;
        } catch {
          field = text.slice(i + 1, end);
        }
      }
      expectKey = false;
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) {
        const where = depth > 2 && rootIsObject && field !== undefined ? `'${field}'` : what;
        throw new GlimpseError('invalid_request', `${where[0]!.toUpperCase()}${where.slice(1)} nests objects and arrays deeper than ${max} levels.`, { param: where === what ? null : field! });
      }
      if (depth === 1) expectKey = rootIsObject = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1 && rootIsObject) {
      expectKey = true;
    }
  }
}
