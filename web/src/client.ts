/**
 * Talks to glimpse's OpenAI-compatible API: models, health, and one streaming chat completion.
 * Every way a request can end is a value (ChatOutcome), so the page can say in words what
 * happened instead of spinning forever.
 */
import { SseDecoder, queuePositionFromComment } from './sse';

export interface WireTextPart {
  type: 'text';
  text: string;
}
export interface WireImagePart {
  type: 'image_url';
  image_url: { url: string };
}
export interface WireFilePart {
  type: 'file';
  file: { file_data: string; filename: string };
}
export interface WireVideoPart {
  type: 'video_url';
  video_url: { url: string };
}
export interface WireMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | Array<WireTextPart | WireImagePart | WireFilePart | WireVideoPart>;
}

export interface ChatBody {
  model: string;
  messages: WireMessage[];
  temperature: number;
  top_p: number;
  max_tokens: number;
  /** Ask for small views of each PDF page and video frame in glimpse_media (the attachment strip). */
  glimpse_thumbnails?: boolean;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export type FailureKind =
  | 'unreachable' // no answer at all: server down or network gone
  | 'interrupted' // the connection closed mid-answer without [DONE]
  | 'stalled' // nothing (no token, no heartbeat) for too long
  | 'timeout' // the server gave up: request_timeout, idle_timeout, queue_timeout
  | 'rate_limited' // 429: queue_full, rate_limited, quota_exceeded
  | 'unauthorized' // 401: an API key is needed or wrong
  | 'loading' // 503 model_loading
  | 'unavailable' // glimpse answers, but the model behind it does not (engine_unavailable, upstream_unavailable)
  | 'error'; // anything else, shown with its code

export interface Failure {
  kind: FailureKind;
  code?: string;
  status?: number;
  message?: string;
  /** Seconds, from Retry-After. */
  retryAfter?: number;
}

export type ChatOutcome =
  | { kind: 'done'; finishReason: string | null; usage?: Usage }
  | { kind: 'stopped'; usage?: Usage }
  | { kind: 'failed'; failure: Failure; usage?: Usage };

export interface ChatCallbacks {
  /** Response headers arrived (the server accepted the request). */
  onAccepted?(): void;
  /** A queued request got its slot (SSE comment `admitted`). */
  onAdmitted?(): void;
  onQueued?(position: number): void;
  /** Any byte arrived: a token, a heartbeat, anything. */
  onActivity?(): void;
  onReasoning?(text: string): void;
  onContent?(text: string): void;
  /** glimpse's `glimpse_boxes` field, as sent on the finish chunk (unchecked JSON). */
  onBoxes?(field: unknown): void;
  /** glimpse's `glimpse_media` field, as sent on the first chunk (unchecked JSON). */
  onMedia?(field: unknown): void;
  onUsage?(usage: Usage): void;
}

export interface ChatOptions {
  body: ChatBody;
  apiKey?: string;
  /** The user's Stop. */
  signal: AbortSignal;
  /** Give up when nothing arrives for this long (ms); glimpse sends heartbeats, so silence means trouble. */
  stallMs: number;
  callbacks: ChatCallbacks;
  fetchImpl?: typeof fetch;
}

function authHeaders(apiKey?: string): Record<string, string> {
  return apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
}

const TIMEOUT_CODES = new Set(['request_timeout', 'idle_timeout', 'queue_timeout']);
const RATE_CODES = new Set(['queue_full', 'rate_limited', 'quota_exceeded']);

export function classifyError(
  status: number | undefined,
  err: { code?: unknown; message?: unknown; type?: unknown } | undefined,
  retryAfterHeader?: string | null,
): Failure {
  const code = typeof err?.code === 'string' ? err.code : typeof err?.type === 'string' ? err.type : undefined;
  const message = typeof err?.message === 'string' ? err.message : undefined;
  const retryAfter =
    retryAfterHeader != null && /^\d+(\.\d+)?$/.test(retryAfterHeader.trim()) ? Number(retryAfterHeader) : undefined;
  const base = { code, status, message, ...(retryAfter !== undefined ? { retryAfter } : {}) };
  if (status === 401 || code === 'unauthorized') return { kind: 'unauthorized', ...base };
  if (status === 429 || (code && RATE_CODES.has(code))) return { kind: 'rate_limited', ...base };
  if (status === 504 || (code && TIMEOUT_CODES.has(code))) return { kind: 'timeout', ...base };
  if (code === 'model_loading') return { kind: 'loading', ...base };
  if (code === 'engine_unavailable' || code === 'upstream_unavailable') return { kind: 'unavailable', ...base };
  return { kind: 'error', ...base };
}

async function readErrorBody(
  res: Response,
): Promise<{ code?: unknown; message?: unknown; type?: unknown } | undefined> {
  try {
    const text = await res.text();
    const json = JSON.parse(text) as { error?: unknown; message?: unknown; code?: unknown };
    if (json && typeof json.error === 'object' && json.error)
      return json.error as { code?: unknown; message?: unknown };
    if (json && typeof json.error === 'string') return { message: json.error, code: json.code };
    return json as { code?: unknown; message?: unknown };
  } catch {
    return undefined;
  }
}

interface ChunkJson {
  error?: { code?: unknown; message?: unknown; type?: unknown };
  choices?: Array<{
    delta?: { content?: unknown; reasoning_content?: unknown; reasoning?: unknown; glimpse_boxes?: unknown };
    finish_reason?: unknown;
  }>;
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
  glimpse_media?: unknown;
}

export async function streamChat(opts: ChatOptions): Promise<ChatOutcome> {
  const doFetch = opts.fetchImpl ?? fetch;
  const inner = new AbortController();
  let stalled = false;
  let stallTimer: ReturnType<typeof setTimeout> | undefined;
  let reader: ReadableStreamDefaultReader<string> | undefined;
  // Aborting the fetch closes the connection (the server then cancels the generation); cancelling
  // the reader as well makes sure a pending read returns even where abort does not reach the body.
  const abortAll = () => {
    inner.abort();
    reader?.cancel().catch(() => {});
  };
  const armStall = () => {
    if (stallTimer) clearTimeout(stallTimer);
    stallTimer = setTimeout(() => {
      stalled = true;
      abortAll();
    }, opts.stallMs);
  };
  const onUserAbort = () => abortAll();
  if (opts.signal.aborted) return { kind: 'stopped' };
  opts.signal.addEventListener('abort', onUserAbort, { once: true });

  let usage: Usage | undefined;
  let finishReason: string | null = null;
  const cb = opts.callbacks;
  try {
    armStall();
    let res: Response;
    try {
      res = await doFetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...authHeaders(opts.apiKey) },
        body: JSON.stringify({ ...opts.body, stream: true, stream_options: { include_usage: true } }),
        signal: inner.signal,
      });
    } catch (e) {
      if (opts.signal.aborted) return { kind: 'stopped' };
      if (stalled) return { kind: 'failed', failure: { kind: 'stalled' } };
      return { kind: 'failed', failure: { kind: 'unreachable', message: e instanceof Error ? e.message : String(e) } };
    }
    armStall();
    if (!res.ok) {
      const err = await readErrorBody(res);
      // A proxy in front of a dead glimpse answers 502/503/504 with its own page, not our JSON.
      if (!err && (res.status === 502 || res.status === 503))
        return { kind: 'failed', failure: { kind: 'unreachable', status: res.status } };
      return { kind: 'failed', failure: classifyError(res.status, err, res.headers.get('Retry-After')) };
    }
    cb.onAccepted?.();
    const qp = res.headers.get('X-Queue-Position');
    if (qp && /^\d+$/.test(qp) && Number(qp) > 0) cb.onQueued?.(Number(qp));
    if (!res.body) return { kind: 'failed', failure: { kind: 'interrupted' } };

    reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const sse = new SseDecoder();
    let sawDone = false;
    const handle = (events: ReturnType<SseDecoder['push']>): ChatOutcome | null => {
      for (const ev of events) {
        if (ev.kind === 'comment') {
          const pos = queuePositionFromComment(ev.text);
          if (pos !== null) cb.onQueued?.(pos);
          else if (/^\s*admitted\b/.test(ev.text)) cb.onAdmitted?.();
          continue;
        }
        if (ev.data.trim() === '[DONE]') {
          sawDone = true;
          continue;
        }
        let json: ChunkJson;
        try {
          json = JSON.parse(ev.data) as ChunkJson;
        } catch {
          continue; // one garbled line must not end a good answer
        }
        if (json.error) return { kind: 'failed', failure: classifyError(undefined, json.error), usage };
        if (json.glimpse_media !== undefined) cb.onMedia?.(json.glimpse_media);
        const choice = json.choices?.[0];
        const delta = choice?.delta;
        const reasoning = delta?.reasoning_content ?? delta?.reasoning;
        if (typeof reasoning === 'string' && reasoning) cb.onReasoning?.(reasoning);
        if (typeof delta?.content === 'string' && delta.content) cb.onContent?.(delta.content);
        if (delta?.glimpse_boxes !== undefined) cb.onBoxes?.(delta.glimpse_boxes);
        if (typeof choice?.finish_reason === 'string') finishReason = choice.finish_reason;
        if (json.usage && typeof json.usage.completion_tokens === 'number') {
          usage = {
            promptTokens: Number(json.usage.prompt_tokens) || 0,
            completionTokens: json.usage.completion_tokens,
          };
          cb.onUsage?.(usage);
        }
      }
      return null;
    };
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
        if (chunk.done && (opts.signal.aborted || stalled)) throw new Error('aborted');
      } catch {
        if (opts.signal.aborted) return { kind: 'stopped', usage };
        if (stalled) return { kind: 'failed', failure: { kind: 'stalled' }, usage };
        return { kind: 'failed', failure: { kind: 'interrupted' }, usage };
      }
      if (chunk.done) break;
      armStall();
      cb.onActivity?.();
      const outcome = handle(sse.push(chunk.value));
      if (outcome) {
        abortAll();
        return outcome;
      }
    }
    const outcome = handle(sse.end());
    if (outcome) return outcome;
    if (!sawDone) return { kind: 'failed', failure: { kind: 'interrupted' }, usage };
    return { kind: 'done', finishReason, usage };
  } finally {
    if (stallTimer) clearTimeout(stallTimer);
    opts.signal.removeEventListener('abort', onUserAbort);
  }
}

export interface ModelTask {
  label: string;
  prompt: string;
}
export interface ModelEntry {
  id: string;
  owned_by?: string;
  /** What the model is good at (a glimpse model profile, --model glm-ocr). */
  description?: string;
  profile?: { name?: string; description?: string; tasks?: unknown };
}

/** The prompts `model` was trained to follow (GLM-OCR's `Text Recognition:`), well-formed ones only. */
export function modelTasks(model: ModelEntry | undefined): ModelTask[] {
  const tasks = model?.profile?.tasks;
  if (!Array.isArray(tasks)) return [];
  return tasks.filter(
    (x): x is ModelTask => !!x && typeof x.label === 'string' && typeof x.prompt === 'string' && x.prompt.trim() !== '',
  );
}

export class HttpFailure extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message ?? failure.kind);
  }
}

export async function listModels(apiKey?: string): Promise<ModelEntry[]> {
  let res: Response;
  try {
    res = await fetch('/v1/models', { headers: authHeaders(apiKey) });
  } catch (e) {
    throw new HttpFailure({ kind: 'unreachable', message: e instanceof Error ? e.message : String(e) });
  }
  if (!res.ok)
    throw new HttpFailure(classifyError(res.status, await readErrorBody(res), res.headers.get('Retry-After')));
  const json = (await res.json()) as { data?: unknown };
  if (!Array.isArray(json.data)) return [];
  return json.data.filter((m): m is ModelEntry => !!m && typeof (m as ModelEntry).id === 'string');
}

export interface Health {
  status?: string;
  model?: string;
  device?: string;
  model_loaded?: boolean;
  engine?: string;
  simulated?: boolean;
  note?: string;
  reason?: string;
}

export async function getHealth(): Promise<Health | null> {
  try {
    const res = await fetch('/health', { cache: 'no-store' });
    return (await res.json()) as Health;
  } catch {
    return null;
  }
}

export interface UiConfig {
  imageMaxEdge: number;
  imageMaxBytes: number;
  maxFileBytes: number;
  maxImagesPerMessage: number;
  heartbeatSeconds: number;
}

export const DEFAULT_UI_CONFIG: UiConfig = {
  imageMaxEdge: 1024,
  imageMaxBytes: 10 * 1024 * 1024,
  maxFileBytes: 40 * 1024 * 1024,
  maxImagesPerMessage: 8,
  heartbeatSeconds: 15,
};

export async function getUiConfig(): Promise<UiConfig> {
  try {
    const res = await fetch('/ui/config.json', { cache: 'no-store' });
    if (!res.ok) return DEFAULT_UI_CONFIG;
    const json = (await res.json()) as Partial<UiConfig>;
    const out = { ...DEFAULT_UI_CONFIG };
    for (const k of Object.keys(out) as Array<keyof UiConfig>) {
      const v = json[k];
      if (typeof v === 'number' && Number.isFinite(v) && v > 0) out[k] = v;
    }
    return out;
  } catch {
    return DEFAULT_UI_CONFIG;
  }
}
