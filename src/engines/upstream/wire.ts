/**
 * The OpenAI chat wire format as upstream servers speak it: the request body glimpse sends, the
 * stream chunks it reads, and the errors their HTTP statuses mean.
 */
import type { Config } from '../../config/index.js';
import { GlimpseError, templateVariables, type GenerateRequest } from '../../core/index.js';
import { toDataUrl } from '../../images/index.js';

export interface UpstreamToolCallDelta {
  index?: number;
  id?: string | null;
  function?: { name?: string | null; arguments?: string | null } | null;
}

export interface UpstreamLogprob {
  token: string;
  logprob: number;
  bytes?: number[] | null;
  top_logprobs?: Array<{ token: string; logprob: number; bytes?: number[] | null }> | null;
}

export interface UpstreamChunk {
  choices?: Array<{
    delta?: {
      content?: string | null;
      reasoning_content?: string | null;
      reasoning?: string | null;
      tool_calls?: UpstreamToolCallDelta[] | null;
    };
    logprobs?: { content?: UpstreamLogprob[] | null } | null;
    finish_reason?: string | null;
  }>;
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    completion_tokens_details?: { reasoning_tokens?: number } | null;
  } | null;
  error?: { message?: string; code?: string | number } | string;
}

/** The OpenAI chat request body an upstream receives. */
export function toOpenAIRequestBody(
  req: GenerateRequest,
  upstreamModel: string,
  thinkingParam: Config['upstreamThinkingParam'] = 'both',
): Record<string, unknown> {
  const messages = req.messages.map((m) => {
    const onlyText = m.content.every((p) => p.type === 'text');
    const text = () => m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
    if (m.role === 'tool') return { role: 'tool', tool_call_id: m.toolCallId, content: text() };
    if (m.toolCalls?.length)
      return { role: 'assistant', content: m.content.length ? text() : null, tool_calls: m.toolCalls };
    if (onlyText) return { role: m.role, content: text() };
    return {
      role: m.role,
      content: m.content.map((p) => {
        if (p.type === 'text') return { type: 'text', text: p.text };
        if (p.type === 'document' || !p.resolved)
          throw new GlimpseError('internal_error', `A ${p.type} reached the upstream engine unresolved.`);
        // A video is kept whole only for pools configured as serving video (vLLM and SGLang do for GLM-4.6V).
        if (p.type === 'video')
          return {
            type: 'video_url',
            video_url: { url: `data:${p.resolved.mime};base64,${p.resolved.data.toString('base64')}` },
          };
        return { type: 'image_url', image_url: { url: toDataUrl(p.resolved) } };
      }),
    };
  });
  const body: Record<string, unknown> = {
    model: upstreamModel,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: req.sampling.maxTokens,
    temperature: req.sampling.temperature,
    top_p: req.sampling.topP,
  };
  const s = req.sampling;
  if (s.seed !== undefined) body.seed = s.seed;
  if (s.stop.length) body.stop = s.stop;
  if (s.presencePenalty !== undefined) body.presence_penalty = s.presencePenalty;
  if (s.frequencyPenalty !== undefined) body.frequency_penalty = s.frequencyPenalty;
  // vLLM's and SGLang's extra sampling parameters; servers that do not know them ignore them.
  if (s.topK !== undefined) body.top_k = s.topK;
  if (s.minP !== undefined) body.min_p = s.minP;
  if (s.repetitionPenalty !== undefined) body.repetition_penalty = s.repetitionPenalty;
  const t = req.toolOptions;
  if (t?.tools) body.tools = t.tools;
  if (t?.toolChoice !== undefined) body.tool_choice = t.toolChoice;
  if (t?.parallelToolCalls !== undefined) body.parallel_tool_calls = t.parallelToolCalls;
  if (t?.responseFormat !== undefined) body.response_format = t.responseFormat;
  if (req.logprobs) {
    body.logprobs = true;
    body.top_logprobs = req.logprobs.top;
  }
  // Thinking on or off, as the client chose (nothing when it did not: the model's default holds).
  const templateVars = templateVariables(req, thinkingParam === 'both' || thinkingParam === 'chat_template_kwargs');
  if (templateVars) body.chat_template_kwargs = templateVars;
  if (req.thinking !== undefined && (thinkingParam === 'both' || thinkingParam === 'thinking'))
    body.thinking = { type: req.thinking ? 'enabled' : 'disabled' };
  return body;
}

export function upstreamHttpError(status: number, body: string): GlimpseError {
  let message = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string; message?: string; detail?: string };
    message =
      (typeof parsed.error === 'string' ? parsed.error : parsed.error?.message) ??
      parsed.message ??
      parsed.detail ??
      message;
  } catch {
    /* not JSON: keep the text */
  }
  if (status === 400 || status === 422)
    return new GlimpseError('invalid_request', `Upstream refused the request: ${message}`);
  if (status === 429)
    return new GlimpseError('rate_limited', `Upstream is rate limiting: ${message}`, {
      headers: { 'Retry-After': '1' },
    });
  return new GlimpseError('upstream_error', `Upstream answered HTTP ${status}: ${message}`);
}
