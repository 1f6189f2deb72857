/**
 * A test double of llama.cpp's `llama-server` (started with a vision projector, `--mmproj`, and
 * `--jinja`, running a GGUF build such as GLM-4.6V-Flash's), speaking its OpenAI dialect as its
 * builds b6xxx write it:
 *
 * - stream chunks with keys in its order (choices, created, id, model, system_fingerprint,
 *   object), a first delta `{"role":"assistant","content":null}`, thinking as
 *   `reasoning_content` deltas (its default `--reasoning-format`), then `content` deltas, and a
 *   last chunk with `finish_reason`, an empty delta and, always, `usage` and llama.cpp's `timings`;
 *   then `data: [DONE]`;
 * - tool calls as it streams them with `--jinja` (its template parses the model's calls into
 *   OpenAI's shape): per call a first delta `{"tool_calls":[{"index":i,"id":<32 letters and
 *   digits>,"type":"function","function":{"name":...,"arguments":""}}]}`, then the arguments in
 *   pieces as `{"tool_calls":[{"index":i,"function":{"arguments":...}}]}`, and `finish_reason`
 *   `tool_calls`; unstreamed, `message.tool_calls` with `content` null. Without `--jinja` a
 *   request that carries `tools` is refused (400 "tools param requires --jinja flag");
 * - its image rules: an `image_url` part must be a base64 data URL (the double, stricter than builds
 *   that can fetch remote URLs, refuses them, so glimpse is held to sending data) of a format
 *   its decoder (stb_image) reads: JPEG, PNG, BMP or GIF, not WebP; without a projector any image
 *   is refused. Errors in its shape: `{"error":{"code":400,"message":...,"type":"invalid_request_error"}}`;
 * - /health `{"status":"ok"}`, /v1/models with `owned_by: "llamacpp"`, and /metrics answered 501
 *   as without `--metrics`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface LlamaScript {
  reasoning: string[];
  content: string[];
  /** Calls the model makes, each with its arguments (JSON text) in the pieces they stream in. */
  toolCalls?: { name: string; arguments: string[] }[];
}

export interface FakeLlamaServer {
  /** Base URL with /v1, as --upstream takes it. */
  url: string;
  /** Model name as llama-server reports it (its --alias, else the GGUF path). */
  model: string;
  /** Bodies of the chat requests it received, parsed. */
  requests: any[];
  /** Images the requests carried, decoded, in order. */
  images: { format: string; bytes: Buffer }[];
  close(): Promise<void>;
}

const FINGERPRINT = 'b6881-8b11deea4';

/** The image formats stb_image decodes, by their first bytes. */
function stbFormat(b: Buffer): string | undefined {
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (b.subarray(0, 2).toString('latin1') === 'BM') return 'bmp';
  if (b.subarray(0, 4).toString('latin1') === 'GIF8') return 'gif';
  return undefined;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const callId = (): string => Array.from(randomBytes(32), (b) => ALNUM[b % ALNUM.length]).join('');

class LlamaError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
  ) {
    super(message);
  }
}

/** The images in a request's messages, checked as llama-server checks them. */
function readImages(body: any, mmproj: boolean): { format: string; bytes: Buffer }[] {
  const out: { format: string; bytes: Buffer }[] = [];
  for (const m of body.messages ?? []) {
    if (!Array.isArray(m.content)) continue;
    for (const part of m.content) {
      if (part?.type !== 'image_url') continue;
      if (!mmproj)
        throw new LlamaError(
          500,
          'image input is not supported - hint: if this is unexpected, you may need to provide the mmproj',
          'server_error',
        );
      const url: string = part.image_url?.url ?? '';
      const m64 = /^data:[^,]*;base64,(.*)$/s.exec(url);
      if (!m64)
        throw new LlamaError(
          400,
          `Invalid image_url.url value: only base64 data URLs are read here (got ${url.slice(0, 40)})`,
        );
      const bytes = Buffer.from(m64[1]!, 'base64');
      const format = stbFormat(bytes);
      if (!format) throw new LlamaError(400, 'Failed to load image or audio file');
      out.push({ format, bytes });
    }
  }
  return out;
}

export async function startFakeLlamaServer(opts: {
  model?: string;
  script: (body: any) => LlamaScript;
  mmproj?: boolean;
  /** Started with --jinja (the default here, and what tool calls need). */
  jinja?: boolean;
}): Promise<FakeLlamaServer> {
  const model = opts.model ?? 'GLM-4.6V-Flash-Q4_K_M.gguf';
  const requests: any[] = [];
  const images: { format: string; bytes: Buffer }[] = [];
  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    requests.push(body);
    if (Array.isArray(body.tools) && body.tools.length && !(opts.jinja ?? true))
      throw new LlamaError(400, 'tools param requires --jinja flag');
    const own = readImages(body, opts.mmproj ?? true);
    images.push(...own);
    const script = opts.script(body);
    const id = `chatcmpl-${randomBytes(16).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const promptTokens = 20 + own.length * 256;
    // Each call's id as llama.cpp makes it: 32 random letters and digits.
    const calls = (script.toolCalls ?? []).map((c) => ({ ...c, id: callId() }));
    const completionTokens =
      script.reasoning.length + script.content.length + calls.reduce((n, c) => n + 1 + c.arguments.length, 0);
    const finishReason = calls.length ? 'tool_calls' : 'stop';
    const usage = {
      completion_tokens: completionTokens,
      prompt_tokens: promptTokens,
      total_tokens: promptTokens + completionTokens,
    };
    const timings = {
      prompt_n: promptTokens,
      prompt_ms: 120.5,
      prompt_per_token_ms: 120.5 / promptTokens,
      prompt_per_second: (promptTokens * 1000) / 120.5,
      predicted_n: completionTokens,
      predicted_ms: 80.25,
      predicted_per_token_ms: 80.25 / Math.max(1, completionTokens),
      predicted_per_second: (completionTokens * 1000) / 80.25,
    };
    if (!body.stream) {
      const message = {
        role: 'assistant',
        ...(script.reasoning.length ? { reasoning_content: script.reasoning.join('') } : {}),
        content: calls.length && !script.content.length ? null : script.content.join(''),
        ...(calls.length
          ? {
              tool_calls: calls.map((c) => ({
                type: 'function',
                function: { name: c.name, arguments: c.arguments.join('') },
                id: c.id,
              })),
            }
          : {}),
      };
      json(res, 200, {
        choices: [{ finish_reason: finishReason, index: 0, message }],
        created,
        model,
        system_fingerprint: FINGERPRINT,
        object: 'chat.completion',
        usage,
        id,
        timings,
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      res.write(
        `data: ${JSON.stringify({ choices, created, id, model, system_fingerprint: FINGERPRINT, object: 'chat.completion.chunk', ...extra })}\n\n`,
      );
    const delta = (d: Record<string, unknown>) => send([{ finish_reason: null, index: 0, delta: d }]);
    delta({ role: 'assistant', content: null });
    for (const piece of script.reasoning) delta({ reasoning_content: piece });
    for (const piece of script.content) delta({ content: piece });
    calls.forEach((c, index) => {
      delta({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] });
      for (const piece of c.arguments) delta({ tool_calls: [{ index, function: { arguments: piece } }] });
    });
    send([{ finish_reason: finishReason, index: 0, delta: {} }], { usage, timings });
    res.end('data: [DONE]\n\n');
  }

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/health') return json(res, 200, { status: 'ok' });
    if (req.method === 'GET' && (path === '/v1/models' || path === '/models'))
      return json(res, 200, {
        object: 'list',
        data: [
          {
            id: model,
            object: 'model',
            created: Math.floor(Date.now() / 1000),
            owned_by: 'llamacpp',
            meta: { n_ctx_train: 131072 },
          },
        ],
      });
    if (req.method === 'GET' && path === '/metrics')
      return json(res, 501, {
        error: {
          code: 501,
          message: 'This server does not support metrics endpoint. Start it with `--metrics`',
          type: 'not_supported_error',
        },
      });
    if (req.method === 'POST' && (path === '/v1/chat/completions' || path === '/chat/completions')) {
      chat(req, res).catch((err: unknown) => {
        const e = err instanceof LlamaError ? err : new LlamaError(500, String(err), 'server_error');
        if (!res.headersSent) json(res, e.status, { error: { code: e.status, message: e.message, type: e.type } });
        else res.destroy();
      });
      return;
    }
    json(res, 404, { error: { code: 404, message: 'File Not Found', type: 'not_found_error' } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    model,
    requests,
    images,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
