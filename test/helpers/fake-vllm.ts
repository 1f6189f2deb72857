/**
 * A test double for a vLLM OpenAI-compatible server (what a GPU box running
 * `vllm serve zai-org/GLM-4.6V-Flash --reasoning-parser glm45` answers), speaking its wire format
 * byte for byte: `data: <json>\n\n` events, a first chunk with role and empty content,
 * `reasoning_content` deltas, content deltas, a finish chunk carrying finish_reason and
 * stop_reason, a usage chunk with empty choices when stream_options.include_usage is set, then
 * `data: [DONE]\n\n`. JSON is compact (no spaces), as vLLM's pydantic serialization writes it.
 *
 * Behaviour per request is scriptable so fault tests can make it misbehave.
 *
 * Like a GPU server it has a capacity: with `maxSeqs` it runs at most that many sequences at
 * once (continuous batching: one joins as soon as one leaves) and holds the rest in its own
 * waiting queue, after sending the response headers, as vLLM does. It serves /metrics in the
 * Prometheus text format with vLLM's own gauge names (vllm:num_requests_running,
 * vllm:num_requests_waiting, vllm:kv_cache_usage_perc) or SGLang's (sglang:num_running_reqs,
 * sglang:num_queue_reqs), and /v1/models as vLLM does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: any;
}

export interface Script {
  reasoning?: string[];
  content?: string[];
  /** ms between chunks */
  delayMs?: number;
  finishReason?: 'stop' | 'length';
  promptTokens?: number;
  /** Answer with this HTTP status and an OpenAI-style error body instead of a stream. */
  status?: number;
  /** Cut the connection after this many content chunks (upstream killed mid-stream). */
  dieAfter?: number;
  /** Accept the request and never answer. */
  hang?: boolean;
  /** Hold the answer after its role chunk until this settles (many requests in flight at once). */
  gate?: Promise<void>;
  /** Send headers and [DONE] with no chunks at all. */
  empty?: boolean;
  /**
   * Tool calls after the content, finishing with finish_reason "tool_calls". `arguments` as one
   * string streams as vLLM's glm45 parser does (one delta with id, type, name and the whole
   * arguments); as an array, as its hermes parser does (id, type and name first, then pieces).
   */
  toolCalls?: Array<{ name: string; arguments: string | string[] }>;
  /** With status 400: vLLM's message (e.g. the one it gives when no tool parser is set). */
  errorMessage?: string;
  /** Leave `index` out of tool call deltas, as some other OpenAI-compatible servers do. */
  omitToolIndex?: boolean;
}

export type MetricsMode = 'vllm' | 'sglang' | 'none' | 'hang';

export interface FakeVllmOptions {
  model?: string;
  script?: FakeVllm['script'];
  /** Sequences run at once; more wait in the server's own queue (default: no limit). */
  maxSeqs?: number;
  /** Which server's /metrics to serve (default vllm); none answers 404, hang never answers. */
  metrics?: MetricsMode;
  /** Port to listen on (0: any), so a killed replica can come back at the same URL. */
  port?: number;
}

export interface FakeVllm {
  /** Base URL including /v1, as glimpse's --upstream takes it. */
  url: string;
  port: number;
  model: string;
  /** Sequences running now, and waiting in the server's own queue. */
  running(): number;
  waiting(): number;
  /** The longest the server's own waiting queue has been (since the last reset). */
  peakWaiting(): number;
  resetPeakWaiting(): void;
  /** Chat completions that ran to their end. */
  completed(): number;
  /** Switch what /metrics answers (a replica whose metrics endpoint dies). */
  metrics: MetricsMode;
  requests: RecordedRequest[];
  /** The body of the latest chat completion request (health checks are GETs and not counted). */
  lastChatBody(): any;
  /** Open connections right now (to prove a client disconnect reached the upstream). */
  openConnections(): number;
  /** Content chunks written so far, over all requests (writes wait for the reader: a slow glimpse holds this back). */
  contentChunksSent(): number;
  /** Set what the next requests get; a function gets the request and its index. */
  script: (req: RecordedRequest, index: number) => Script;
  close(): Promise<void>;
}

const DEFAULT_SCRIPT: Script = {
  reasoning: ['The user', ' asks about', ' the image.'],
  content: ['A red', ' square', ' on white', '.'],
  delayMs: 2,
  finishReason: 'stop',
  promptTokens: 42,
};

export async function startFakeVllm(opts: FakeVllmOptions = {}): Promise<FakeVllm> {
  const model = opts.model ?? 'zai-org/GLM-4.6V-Flash';
  const requests: RecordedRequest[] = [];
  const sockets = new Set<import('node:net').Socket>();
  let open = 0;
  let contentSent = 0;
  const maxSeqs = opts.maxSeqs ?? Infinity;
  let running = 0;
  let peakWaiting = 0;
  let completed = 0;
  const waitingLine: Array<() => void> = [];

  /** Sequences leave the batch when their last token is out (as vLLM frees them before the final chunk), or when the client goes. */
  const leaving = new WeakMap<ServerResponse, () => void>();
  /** A place in the running batch, once one is free; false if the client left while waiting. */
  const admit = (res: ServerResponse): Promise<boolean> => {
    const take = () => {
      running++;
      let left = false;
      const leave = () => {
        if (left) return;
        left = true;
        running--;
        waitingLine.shift()?.();
      };
      leaving.set(res, leave);
      res.once('close', leave);
      return true;
    };
    if (running < maxSeqs && waitingLine.length === 0) return Promise.resolve(take());
    return new Promise<boolean>((resolve) => {
      const go = () => {
        res.off('close', gone);
        resolve(res.destroyed ? (waitingLine.shift()?.(), false) : take());
      };
      const gone = () => {
        const i = waitingLine.indexOf(go);
        if (i >= 0) waitingLine.splice(i, 1);
        resolve(false);
      };
      res.once('close', gone);
      waitingLine.push(go);
      peakWaiting = Math.max(peakWaiting, waitingLine.length);
    });
  };

  const metricsText = (mode: 'vllm' | 'sglang'): string => {
    const gauge = (name: string, help: string, labels: string, v: number) =>
      `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name}{${labels}} ${v.toFixed(1)}\n`;
    if (mode === 'sglang') {
      const l = `model_name=${JSON.stringify(model)}`;
      return (
        gauge('sglang:num_running_reqs', 'The number of running requests.', l, running) +
        gauge('sglang:num_queue_reqs', 'The number of requests in the waiting queue.', l, waitingLine.length)
      );
    }
    const l = `engine="0",model_name=${JSON.stringify(model)}`;
    return (
      gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', l, running) +
      gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', l, waitingLine.length) +
      gauge(
        'vllm:kv_cache_usage_perc',
        'KV-cache usage. 1 means 100 percent usage.',
        l,
        Number.isFinite(maxSeqs) ? running / maxSeqs : 0,
      )
    );
  };

  const fake: FakeVllm = {
    url: '',
    port: 0,
    model,
    running: () => running,
    waiting: () => waitingLine.length,
    peakWaiting: () => peakWaiting,
    resetPeakWaiting: () => {
      peakWaiting = waitingLine.length;
    },
    completed: () => completed,
    metrics: opts.metrics ?? 'vllm',
    requests,
    lastChatBody: () => [...requests].reverse().find((r) => r.method === 'POST')?.body,
    openConnections: () => open,
    contentChunksSent: () => contentSent,
    script: opts.script ?? (() => DEFAULT_SCRIPT),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    open++;
    res.on('close', () => open--);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: any = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const rec: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
    requests.push(rec);

    if (req.method === 'GET' && req.url === '/metrics') {
      requests.pop(); // scrapes are not requests a test counts
      if (fake.metrics === 'hang') return;
      if (fake.metrics === 'none') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ detail: 'Not Found' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metricsText(fake.metrics));
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      const created = Math.floor(Date.now() / 1000);
      const payload = {
        object: 'list',
        data: [
          {
            id: model,
            object: 'model',
            created,
            owned_by: 'vllm',
            root: model,
            parent: null,
            max_model_len: 65536,
            permission: [],
          },
        ],
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ detail: 'Not Found' }));
      return;
    }
    const s = { ...DEFAULT_SCRIPT, ...fake.script(rec, requests.filter((r) => r.method === 'POST').length - 1) };
    if (body?.model !== model) {
      s.status = 404;
    }
    // GLM's chat template with enable_thinking=false closes the think block in the prompt, so the
    // model answers straight away and the glm45 parser finds no reasoning (`thinking` is not a
    // field vLLM knows: it is ignored, as vLLM ignores every unknown field).
    if (body?.chat_template_kwargs?.enable_thinking === false) s.reasoning = [];
    if (s.hang) return; // never answer; the socket stays open until the client gives up
    if (s.status && s.status >= 400) {
      const message =
        s.errorMessage ?? (s.status === 404 ? `The model \`${body?.model}\` does not exist.` : 'Internal server error');
      const type = s.status === 404 ? 'NotFoundError' : s.status === 400 ? 'BadRequestError' : 'InternalServerError';
      res
        .writeHead(s.status, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message, type, param: null, code: s.status } }));
      return;
    }
    const id = 'chatcmpl-' + randomBytes(16).toString('hex');
    const created = Math.floor(Date.now() / 1000);
    const head = { id, object: 'chat.completion.chunk', created, model };
    // Like a real server, stop writing while the reader is not reading (TCP backpressure).
    const send = async (obj: unknown) => {
      if (!res.write(`data: ${JSON.stringify(obj)}\n\n`) && !res.destroyed) {
        await new Promise<void>((r) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            r();
          };
          res.once('drain', done);
          res.once('close', done);
        });
      }
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    // Headers are out; the sequence waits here for a place in the running batch.
    if (!(await admit(res))) return;
    if (s.empty) {
      res.end('data: [DONE]\n\n');
      return;
    }
    if (body?.stream !== true) {
      // Non-streaming answer (glimpse always streams, but keep the double honest).
      const content = (s.content ?? []).join('');
      const reasoning = (s.reasoning ?? []).join('') || null;
      const completion = (s.content ?? []).length + (s.reasoning ?? []).length;
      res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', reasoning_content: reasoning, content, tool_calls: [] },
              logprobs: null,
              finish_reason: s.finishReason,
              stop_reason: null,
            },
          ],
          usage: {
            prompt_tokens: s.promptTokens,
            total_tokens: (s.promptTokens ?? 0) + completion,
            completion_tokens: completion,
            prompt_tokens_details: null,
          },
          prompt_logprobs: null,
        }),
      );
      return;
    }
    await send({
      ...head,
      choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
    });
    if (s.gate) await s.gate;
    let completion = 0;
    for (const r of s.reasoning ?? []) {
      if (s.delayMs) await sleep(s.delayMs);
      if (res.destroyed) return;
      await send({
        ...head,
        choices: [{ index: 0, delta: { reasoning_content: r }, logprobs: null, finish_reason: null }],
      });
      completion++;
    }
    // With logprobs asked for, each content piece counts as one token, as vLLM sends one per chunk.
    const logprobsFor = (token: string) => {
      if (body?.logprobs !== true) return null;
      const entry = (t: string, lp: number) => ({ token: t, logprob: lp, bytes: [...Buffer.from(t, 'utf8')] });
      const top = Array.from({ length: body.top_logprobs ?? 0 }, (_, i) =>
        entry(i === 0 ? token : `${token}~${i}`, -0.05 - i),
      );
      return { content: [{ ...entry(token, -0.05), top_logprobs: top }] };
    };
    let n = 0;
    for (const c of s.content ?? []) {
      if (s.delayMs) await sleep(s.delayMs);
      if (res.destroyed) return;
      if (s.dieAfter !== undefined && n >= s.dieAfter) {
        res.socket?.destroy();
        return;
      }
      await send({
        ...head,
        choices: [{ index: 0, delta: { content: c }, logprobs: logprobsFor(c), finish_reason: null }],
      });
      contentSent++;
      completion++;
      n++;
    }
    const toolCallId = () => 'chatcmpl-tool-' + randomBytes(16).toString('hex');
    const indexed = <T extends { index: number }>(d: T) => (s.omitToolIndex ? (({ index: _, ...rest }) => rest)(d) : d);
    for (const [index, call] of (s.toolCalls ?? []).entries()) {
      if (s.delayMs) await sleep(s.delayMs);
      if (res.destroyed) return;
      if (typeof call.arguments === 'string') {
        await send({
          ...head,
          choices: [
            {
              index: 0,
              delta: {
                content: '',
                tool_calls: [
                  indexed({
                    id: toolCallId(),
                    type: 'function',
                    index,
                    function: { name: call.name, arguments: call.arguments },
                  }),
                ],
              },
              logprobs: null,
              finish_reason: null,
            },
          ],
        });
      } else {
        await send({
          ...head,
          choices: [
            {
              index: 0,
              delta: {
                tool_calls: [indexed({ id: toolCallId(), type: 'function', index, function: { name: call.name } })],
              },
              logprobs: null,
              finish_reason: null,
            },
          ],
        });
        for (const piece of call.arguments) {
          if (s.delayMs) await sleep(s.delayMs);
          await send({
            ...head,
            choices: [
              {
                index: 0,
                delta: { tool_calls: [indexed({ index, function: { arguments: piece } })] },
                logprobs: null,
                finish_reason: null,
              },
            ],
          });
        }
      }
      completion++;
    }
    if (res.destroyed) return;
    const finishReason = s.toolCalls?.length ? 'tool_calls' : s.finishReason;
    await send({
      ...head,
      choices: [{ index: 0, delta: { content: '' }, logprobs: null, finish_reason: finishReason, stop_reason: null }],
    });
    if (body?.stream_options?.include_usage) {
      await send({
        ...head,
        choices: [],
        usage: {
          prompt_tokens: s.promptTokens,
          total_tokens: (s.promptTokens ?? 0) + completion,
          completion_tokens: completion,
        },
      });
    }
    completed++;
    leaving.get(res)?.();
    res.end('data: [DONE]\n\n');
  });
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', () => r()));
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}/v1`;
  return fake;
}
