/**
 * A test double for Ollama's OpenAI-compatible endpoint (`ollama serve`, /v1), the kind of server
 * that tells a gateway nothing about its load: no /metrics (Go's plain-text "404 page not found"),
 * /v1/models with Ollama's `owned_by: "library"`, errors as its openai middleware writes them
 * (`{"error":{"message","type","param":null,"code":null}}`, type not_found_error for 404,
 * invalid_request_error for 400, api_error otherwise), and its stream: `data: <json>\n\n` chunks,
 * each with `system_fingerprint: "fp_ollama"` and a delta that carries `role: "assistant"` every
 * time, a last chunk with empty content and the finish_reason, a usage chunk with no choices when
 * stream_options.include_usage is set, then `data: [DONE]\n\n`.
 *
 * Its capacity is OLLAMA_NUM_PARALLEL's: at most `parallel` requests run at once, the rest wait
 * inside it (no byte sent until theirs runs, as Ollama answers nothing before its first token),
 * so the time to first token grows with its queue. With `maxQueue` it refuses past that many
 * waiting, as OLLAMA_MAX_QUEUE does: 503 "server busy" (or `refuseStatus` 429, as llama-server's
 * and cloud APIs' rate limits answer). Each running request's tokens come slower the more run
 * beside it, as one GPU shared by a batch does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeOllamaOptions {
  /** OLLAMA_NUM_PARALLEL: requests run at once. */
  parallel: number;
  /** OLLAMA_MAX_QUEUE: requests waiting past this are refused (default: no bound). */
  maxQueue?: number;
  /** Status of a refusal: 503 as Ollama answers, or 429 (default 503). */
  refuseStatus?: 429 | 503;
  model?: string;
  /** Time to the first token once running (prompt evaluation). */
  prefillMs?: number;
  /** Time per token with one request running; n running make each token (1 + (n-1)/parallel/2) times slower. */
  tokenMs?: number;
  tokens?: string[];
}

export interface FakeOllama {
  /** Base URL including /v1, as glimpse's --upstream takes it. */
  url: string;
  model: string;
  running(): number;
  /** Requests waiting inside it for a parallel slot. */
  queued(): number;
  /** The most that ever ran at once (never above `parallel`). */
  peakRunning(): number;
  /** Time-weighted mean of its queue since the last reset: how much of the load glimpse left waiting here. */
  meanQueued(): number;
  resetMeanQueued(): void;
  completed(): number;
  refused(): number;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startFakeOllama(opts: FakeOllamaOptions): Promise<FakeOllama> {
  const model = opts.model ?? 'glm4v:latest';
  const prefillMs = opts.prefillMs ?? 20;
  const tokenMs = opts.tokenMs ?? 8;
  const tokens = opts.tokens ?? ['A', ' red', ' square', ' on', ' white', '.'];
  const sockets = new Set<import('node:net').Socket>();
  const line: Array<() => void> = [];
  let running = 0;
  let peak = 0;
  let completed = 0;
  let refused = 0;
  let seq = 0;
  // Time-weighted queue length: area under the queue curve since `since`.
  let area = 0;
  let since = performance.now();
  let last = since;
  const tick = () => {
    const now = performance.now();
    area += line.length * (now - last);
    last = now;
  };

  const error = (res: ServerResponse, status: number, message: string) => {
    const type = status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : 'api_error';
    res
      .writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
      .end(JSON.stringify({ error: { message, type, param: null, code: null } }));
  };

  /** A parallel slot, once one is free; false when the client left while waiting. */
  const slot = (res: ServerResponse): Promise<boolean> =>
    new Promise((resolve) => {
      const take = () => {
        running++;
        peak = Math.max(peak, running);
        res.once('close', () => {
          running--;
          tick();
          line.shift()?.();
        });
        resolve(true);
      };
      if (running < opts.parallel && line.length === 0) return take();
      const go = () => {
        res.off('close', gone);
        if (res.destroyed) {
          line.shift()?.();
          resolve(false);
        } else take();
      };
      const gone = () => {
        tick();
        const i = line.indexOf(go);
        if (i >= 0) line.splice(i, 1);
        resolve(false);
      };
      tick();
      line.push(go);
      res.once('close', gone);
    });

  const chat = async (body: any, res: ServerResponse) => {
    if (body?.model !== model) return error(res, 404, `model "${body?.model}" not found, try pulling it first`);
    if (!Array.isArray(body.messages) || !body.messages.length) return error(res, 400, 'messages is required');
    if (running >= opts.parallel && line.length >= (opts.maxQueue ?? Infinity)) {
      refused++;
      if (opts.refuseStatus === 429) return error(res, 429, 'Too many requests: the server is at capacity.');
      return error(res, 503, 'server busy, please try again.  maximum pending requests exceeded');
    }
    if (!(await slot(res))) return;
    const id = `chatcmpl-${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      system_fingerprint: 'fp_ollama',
      choices: [{ index: 0, delta: { role: 'assistant', ...delta }, finish_reason: finish }],
    });
    const perToken = () => tokenMs * (1 + (running - 1) / opts.parallel / 2);
    await sleep(prefillMs);
    if (res.destroyed) return;
    if (body.stream !== true) {
      for (let i = 1; i < tokens.length; i++) await sleep(perToken());
      const usage = { prompt_tokens: 26, completion_tokens: tokens.length, total_tokens: 26 + tokens.length };
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          system_fingerprint: 'fp_ollama',
          choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: 'stop' }],
          usage,
        }),
      );
      completed++;
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const [i, t] of tokens.entries()) {
      if (i > 0) await sleep(perToken());
      if (res.destroyed) return;
      res.write(`data: ${JSON.stringify(chunk({ content: t }, null))}\n\n`);
    }
    res.write(`data: ${JSON.stringify(chunk({ content: '' }, 'stop'))}\n\n`);
    if (body.stream_options?.include_usage) {
      const usage = { prompt_tokens: 26, completion_tokens: tokens.length, total_tokens: 26 + tokens.length };
      const { choices: _, ...head } = chunk({}, null);
      res.write(`data: ${JSON.stringify({ ...head, choices: [], usage })}\n\n`);
    }
    completed++;
    res.end('data: [DONE]\n\n');
  };

  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    if (req.method === 'GET' && req.url === '/v1/models') {
      const data = [{ id: model, object: 'model', created: 1733000000, owned_by: 'library' }];
      res
        .writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
        .end(JSON.stringify({ object: 'list', data }));
      return;
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        return error(res, 400, 'invalid character in request body');
      }
      return chat(body, res);
    }
    // Go's default mux: /metrics and every other unknown path.
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found');
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    model,
    running: () => running,
    queued: () => line.length,
    peakRunning: () => peak,
    meanQueued: () => {
      tick();
      return area / Math.max(1, last - since);
    },
    resetMeanQueued: () => {
      tick();
      area = 0;
      since = last;
    },
    completed: () => completed,
    refused: () => refused,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
