/**
 * Upstream engine: one or more OpenAI-compatible servers (vLLM, SGLang, Ollama, LM Studio,
 * llama-server, Zhipu's cloud API). Streams are passed through chunk by chunk; reasoning
 * (`reasoning_content`, or `reasoning` as newer vLLM names it) and usage are carried.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { Config } from '../../config/index.js';
import { servedModelName } from '../../config/index.js';
import { GlimpseError, type Engine, type EngineHealth, type GenerateEvent, type GenerateRequest, type Usage, type FinishReason } from '../../core/index.js';
import { toDataUrl } from '../../images/index.js';
import type { Logger } from '../../observability/index.js';
import { parseSseData } from './sse-parse.js';

export { parseSseData } from './sse-parse.js';

interface UpstreamChunk {
  choices?: Array<{ delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string; code?: string | number } | string;
}

/** The OpenAI chat request body an upstream receives. */
export function toOpenAIRequestBody(req: GenerateRequest, upstreamModel: string): Record<string, unknown> {
  const messages = req.messages.map((m) => {
    const onlyText = m.content.every((p) => p.type === 'text');
    if (onlyText) return { role: m.role, content: m.content.map((p) => (p.type === 'text' ? p.text : '')).join('') };
    return {
      role: m.role,
      content: m.content.map((p) => {
        if (p.type === 'text') return { type: 'text', text: p.text };
        if (!p.resolved) throw new GlimpseError('internal_error', 'An image reached the upstream engine unresolved.');
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
  if (req.sampling.seed !== undefined) body.seed = req.sampling.seed;
  if (req.sampling.stop.length) body.stop = req.sampling.stop;
  return body;
}

function normalizeBase(url: string): string {
  return url.replace(/\/+$/, '');
}

export function createUpstreamEngine(config: Config, logger: Logger): Engine {
  if (!config.upstream.length) {
    throw new GlimpseError('invalid_request', 'The upstream engine needs at least one base URL: --upstream http://host:8000/v1');
  }
  const bases = config.upstream.map(normalizeBase);
  const model = servedModelName(config);
  const upstreamModel = config.upstreamModel ?? model;
  const dispatcher: Dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256, headersTimeout: config.requestTimeout * 1000, bodyTimeout: config.idleTimeout * 1000 });
  let next = 0;
  let health: EngineHealth = { status: 'loading', modelLoaded: false, ready: false, reason: 'Checking upstream servers.' };

  const authHeaders = (): Record<string, string> => (config.upstreamApiKey ? { authorization: `Bearer ${config.upstreamApiKey}` } : {});

  async function probe(base: string): Promise<boolean> {
    try {
      const res = await request(`${base}/models`, { method: 'GET', headers: authHeaders(), dispatcher, headersTimeout: 5000, bodyTimeout: 5000 });
      await res.body.dump();
      return res.statusCode < 500;
    } catch {
      return false;
    }
  }

  return {
    async start() {
      const results = await Promise.all(bases.map(probe));
      const up = results.filter(Boolean).length;
      health = up
        ? { status: 'healthy', modelLoaded: true, ready: true }
        : { status: 'unhealthy', modelLoaded: false, ready: false, reason: `No upstream answered GET /models (${bases.join(', ')}).` };
      if (!up) logger.warn({ upstream: bases }, 'no upstream reachable at start');
    },

    async *generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent> {
      const base = bases[next++ % bases.length]!;
      const body = toOpenAIRequestBody(req, upstreamModel);
      let res: Dispatcher.ResponseData;
      try {
        res = await request(`${base}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-request-id': req.id, ...authHeaders() },
          body: JSON.stringify(body),
          signal,
          dispatcher,
        });
      } catch (err) {
        if (signal.aborted) {
          yield { type: 'done', finishReason: 'cancelled' };
          return;
        }
        yield { type: 'error', error: new GlimpseError('upstream_unavailable', `Upstream ${base} could not be reached: ${(err as Error).message}.`, { cause: err }) };
        return;
      }
      if (res.statusCode >= 400) {
        const text = await res.body.text().catch(() => '');
        yield { type: 'error', error: upstreamHttpError(res.statusCode, text) };
        return;
      }
      let usage: Usage | undefined;
      let finish: FinishReason | undefined;
      let emitted = 0;
      try {
        for await (const payload of parseSseData(res.body)) {
          if (payload === '[DONE]') break;
          let chunk: UpstreamChunk;
          try {
            chunk = JSON.parse(payload) as UpstreamChunk;
          } catch {
            throw new GlimpseError('upstream_error', 'Upstream sent a stream event that is not JSON.');
          }
          if (chunk.error) {
            const msg = typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'unknown error');
            throw new GlimpseError('upstream_error', `Upstream error: ${msg}`);
          }
          for (const choice of chunk.choices ?? []) {
            const reasoning = choice.delta?.reasoning_content ?? choice.delta?.reasoning;
            if (reasoning) {
              emitted++;
              yield { type: 'reasoning', text: reasoning };
            }
            const content = choice.delta?.content;
            if (content) {
              emitted++;
              yield { type: 'token', text: content };
            }
            if (choice.finish_reason) finish = choice.finish_reason === 'length' ? 'length' : 'stop';
          }
          if (chunk.usage) usage = { promptTokens: chunk.usage.prompt_tokens ?? 0, completionTokens: chunk.usage.completion_tokens ?? 0 };
        }
      } catch (err) {
        if (signal.aborted) {
          yield { type: 'done', finishReason: 'cancelled' };
          return;
        }
        const error = err instanceof GlimpseError ? err : new GlimpseError('upstream_error', `Upstream stream broke: ${(err as Error).message}.`, { cause: err });
        yield { type: 'error', error };
        return;
      }
      if (signal.aborted) {
        yield { type: 'done', finishReason: 'cancelled' };
        return;
      }
      if (!finish && emitted === 0) {
        yield { type: 'error', error: new GlimpseError('empty_completion', 'Upstream ended the stream without any tokens.') };
        return;
      }
      if (!finish) {
        yield { type: 'error', error: new GlimpseError('upstream_error', 'Upstream stream ended before the answer finished.') };
        return;
      }
      if (usage) yield { type: 'usage', usage };
      yield { type: 'done', finishReason: finish };
    },

    info: () => ({ engine: 'upstream', model, models: [{ id: model, ownedBy: 'upstream' }], device: `upstream (${bases.length} server${bases.length > 1 ? 's' : ''})`, simulated: false }),
    health: () => health,
    async close() {
      await dispatcher.close();
    },
  };
}

function upstreamHttpError(status: number, body: string): GlimpseError {
  let message = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string; message?: string; detail?: string };
    message = (typeof parsed.error === 'string' ? parsed.error : parsed.error?.message) ?? parsed.message ?? parsed.detail ?? message;
  } catch {
    /* not JSON: keep the text */
  }
  if (status === 400 || status === 422) return new GlimpseError('invalid_request', `Upstream refused the request: ${message}`);
  if (status === 429) return new GlimpseError('rate_limited', `Upstream is rate limiting: ${message}`, { headers: { 'Retry-After': '1' } });
  return new GlimpseError('upstream_error', `Upstream answered HTTP ${status}: ${message}`);
}
