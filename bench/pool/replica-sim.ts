/**
 * A simulated vLLM replica: what `vllm serve zai-org/GLM-4.6V-Flash` looks like from the network,
 * with a scheduler shaped like vLLM's so that a router in front of several of them meets the same
 * trade-offs it meets on GPUs.
 *
 * - Continuous batching: up to `maxNumSeqs` sequences run together (vLLM's --max-num-seqs); the
 *   rest wait in the replica's own FIFO, as vLLM's waiting queue does.
 * - One engine step decodes one token for every running sequence; a step takes
 *   stepBaseMs + stepPerSeqMs x batch, so time per token grows with the batch.
 * - Sequences admitted in a step are prefilled in that step (vLLM's chunked prefill mixes them into
 *   the decode batch), so a slow prefill delays every running sequence, not only the new one.
 * - An image whose bytes this replica saw recently prefills fast (vLLM's prefix cache keyed by the
 *   multimodal hash: the image's KV blocks are still resident); an unseen one pays the vision
 *   encoder and the full prefill. The cache holds the last `imageCacheSize` images (LRU), standing
 *   for the free KV blocks of a busy replica.
 * - Wire format as vLLM writes it: compact JSON, `data: <json>\n\n` events, a role chunk, one chunk
 *   per token, the last token's chunk carrying finish_reason and stop_reason, a usage chunk with
 *   empty choices when stream_options.include_usage asks, then `data: [DONE]\n\n`; a wrong model
 *   is 404 NotFoundError; `/v1/models`, `/health`, and `/metrics` in the Prometheus text format
 *   that prometheus_client writes for vLLM (gauges as floats, counters with _total, no _created).
 * - A client that disconnects is aborted: its sequence leaves the batch or the queue.
 *
 *   node --import tsx bench/pool/replica-sim.ts --replicas 3 [--max-num-seqs 8] ...
 * prints one JSON line {"urls":[...]} once every replica listens, and runs until SIGTERM.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface ReplicaOptions {
  model: string;
  /** vLLM's --max-num-seqs: sequences in one batch. */
  maxNumSeqs: number;
  stepBaseMs: number;
  stepPerSeqMs: number;
  /** Tokens in every answer unless max_tokens asks for fewer (with answerTokensMin, the mean length). */
  answerTokens: number;
  /**
   * Set: answers vary in length, evenly from this up to 2 x answerTokens - this (the same sequence
   * of lengths every run), as chat answers do; unset: every answer is answerTokens long.
   */
  answerTokensMin?: number;
  /** Prefill of a text-only prompt, added to the step that admits it. */
  textPrefillMs: number;
  /** Prefill of an image this replica has not seen recently (vision encoder + full prefill). */
  imagePrefillMs: number;
  /** Prefill of an image whose prefix is still cached here. */
  cachedImagePrefillMs: number;
  /** Images whose prefix stays cached (LRU). */
  imageCacheSize: number;
  /** Prompt tokens an image stands for (KV usage and usage counts). */
  imageTokens: number;
  /** KV cache size in tokens (for kv_cache_usage_perc). */
  kvCapacityTokens: number;
  /** vLLM before 0.10 named the KV gauge gpu_cache_usage_perc; later ones kv_cache_usage_perc. */
  kvGaugeName: 'kv_cache_usage_perc' | 'gpu_cache_usage_perc';
  /** Answer at once, every token in one go, no batch or queue: the upstream bench/proxy puts behind a proxy to see only the proxy's cost. */
  zeroLatency: boolean;
}

export const DEFAULT_REPLICA: ReplicaOptions = {
  model: 'zai-org/GLM-4.6V-Flash',
  maxNumSeqs: 8,
  stepBaseMs: 5,
  stepPerSeqMs: 0.6,
  answerTokens: 32,
  textPrefillMs: 4,
  imagePrefillMs: 120,
  cachedImagePrefillMs: 12,
  imageCacheSize: 8,
  imageTokens: 1200,
  kvCapacityTokens: 65536,
  kvGaugeName: 'kv_cache_usage_perc',
  zeroLatency: false,
};

interface Seq {
  id: string;
  created: number;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number;
  /** max_tokens ends it before its natural length. */
  cut: boolean;
  promptTokens: number;
  images: string[];
  generated: number;
  text: string;
  res: ServerResponse;
  done: boolean;
}

export interface ReplicaStats {
  running: number;
  waiting: number;
  finished: number;
  imageQueries: number;
  imageHits: number;
}

export interface Replica {
  /** Base URL including /v1, as an OpenAI client or glimpse's --upstream takes it. */
  url: string;
  port: number;
  stats(): ReplicaStats;
  close(): Promise<void>;
}

/** Python's repr of a float, as prometheus_client writes sample values (3 → 3.0). */
const pyFloat = (x: number): string => (Number.isInteger(x) ? x.toFixed(1) : String(x));

/** Every image of the request: data URLs by the hash of their bytes, other URLs by their text. */
function imageKeys(body: any): string[] {
  const keys: string[] = [];
  for (const m of Array.isArray(body?.messages) ? body.messages : []) {
    if (!Array.isArray(m?.content)) continue;
    for (const part of m.content) {
      const url: unknown = part?.type === 'image_url' ? part.image_url?.url : undefined;
      if (typeof url !== 'string') continue;
      const comma = url.startsWith('data:') ? url.indexOf(',') : -1;
      const bytes = comma >= 0 ? Buffer.from(url.slice(comma + 1), 'base64') : Buffer.from(url);
      keys.push(createHash('sha256').update(bytes).digest('hex'));
    }
  }
  return keys;
}

const textTokens = (body: any): number => Math.ceil(JSON.stringify(body?.messages ?? '').length / 4);
const WORDS = [' A', ' red', ' square', ' sits', ' on', ' a', ' white', ' table', ' near', ' the', ' window', '.'];

export async function startReplica(options: Partial<ReplicaOptions> = {}, port = 0): Promise<Replica> {
  const o: ReplicaOptions = { ...DEFAULT_REPLICA, ...options };
  const running: Seq[] = [];
  const waiting: Seq[] = [];
  const imageLru = new Map<string, true>();
  const counters = {
    prompt: 0,
    generation: 0,
    stop: 0,
    length: 0,
    abort: 0,
    prefixQueries: 0,
    prefixHits: 0,
    mmQueries: 0,
    mmHits: 0,
  };
  let stepTimer: NodeJS.Timeout | undefined;
  let seqNo = 0;
  let lengthSeed = 12345;
  const answerLength = (): number => {
    if (o.answerTokensMin === undefined) return o.answerTokens;
    lengthSeed = (lengthSeed * 1103515245 + 12345) >>> 0;
    const span = 2 * (o.answerTokens - o.answerTokensMin) + 1;
    return o.answerTokensMin + ((lengthSeed >>> 8) % span);
  };

  const head = (s: Seq) =>
    `{"id":"${s.id}","object":"chat.completion.chunk","created":${s.created},"model":${JSON.stringify(o.model)},"choices":`;
  const usage = (s: Seq) => ({
    prompt_tokens: s.promptTokens,
    total_tokens: s.promptTokens + s.generated,
    completion_tokens: s.generated,
    prompt_tokens_details: null,
  });

  /** Prefill cost of a sequence admitted now; records cache hits and touches the LRU. */
  function prefillMs(s: Seq): number {
    let ms = o.textPrefillMs;
    for (const key of s.images) {
      counters.mmQueries++;
      counters.prefixQueries += o.imageTokens;
      if (imageLru.has(key)) {
        imageLru.delete(key);
        counters.mmHits++;
        counters.prefixHits += o.imageTokens;
        ms += o.cachedImagePrefillMs;
      } else ms += o.imagePrefillMs;
      imageLru.set(key, true);
      while (imageLru.size > o.imageCacheSize) imageLru.delete(imageLru.keys().next().value!);
    }
    return ms;
  }

  function finish(s: Seq, reason: 'stop' | 'length'): void {
    s.done = true;
    counters[reason]++;
    if (s.stream) {
      if (s.includeUsage) s.res.write(`data: ${head(s)}[],"usage":${JSON.stringify(usage(s))}}\n\n`);
      s.res.end('data: [DONE]\n\n');
      return;
    }
    const message = { role: 'assistant', reasoning_content: null, content: s.text, tool_calls: [] };
    const choice = { index: 0, message, logprobs: null, finish_reason: reason, stop_reason: null };
    const body = {
      id: s.id,
      object: 'chat.completion',
      created: s.created,
      model: o.model,
      choices: [choice],
      usage: usage(s),
      prompt_logprobs: null,
      kv_transfer_params: null,
    };
    s.res.writeHead(200, { 'content-type': 'application/json', server: 'uvicorn' }).end(JSON.stringify(body));
  }

  function emitToken(s: Seq): void {
    if (s.stream && s.generated === 0)
      s.res.write(
        `data: ${head(s)}[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n`,
      );
    const token = WORDS[s.generated % WORDS.length];
    s.generated++;
    counters.generation++;
    s.text += token;
    const last = s.generated >= s.maxTokens;
    const reason = s.cut ? 'length' : 'stop';
    if (s.stream) {
      const fin = last ? `"finish_reason":"${reason}","stop_reason":null` : '"finish_reason":null';
      s.res.write(
        `data: ${head(s)}[{"index":0,"delta":{"content":${JSON.stringify(token)}},"logprobs":null,${fin}}]}\n\n`,
      );
    }
    if (last) finish(s, reason);
  }

  // The simulated GPU keeps its own clock. A step follows the one before it back to back, due when
  // that one ended plus its own time, not whenever this process (which shares the CPU with the proxy
  // under test and the load generator) gets round to it: a proxy that uses more CPU must not make the
  // GPU behind it slower. At most one step of lag is caught up (a long stall is not replayed in a
  // burst). How late the steps fired is kept and served at /sim/stats, so a run can say how far the
  // host let the clock slip.
  let due = 0;
  const clock = { steps: 0, lateMs: 0, maxLateMs: 0 };

  /** One engine step: admit what fits, then after the step's time emit one token per sequence. */
  function step(continued: boolean): void {
    stepTimer = undefined;
    let extra = 0;
    while (running.length < o.maxNumSeqs && waiting.length) {
      const s = waiting.shift()!;
      if (s.done) continue;
      extra += prefillMs(s);
      counters.prompt += s.promptTokens;
      running.push(s);
    }
    if (!running.length) return;
    const ms = o.stepBaseMs + o.stepPerSeqMs * running.length + extra;
    const now = performance.now();
    due = (continued ? Math.max(due, now - ms) : now) + ms;
    stepTimer = setTimeout(
      () => {
        stepTimer = undefined;
        const late = Math.max(0, performance.now() - due);
        clock.steps++;
        clock.lateMs += late;
        clock.maxLateMs = Math.max(clock.maxLateMs, late);
        for (const s of running) if (!s.done) emitToken(s);
        for (let i = running.length - 1; i >= 0; i--) if (running[i].done) running.splice(i, 1);
        step(true);
      },
      Math.max(0, due - now),
    );
  }

  function kvUsage(): number {
    let tokens = 0;
    for (const s of running) tokens += s.promptTokens + s.generated;
    return Math.min(1, tokens / o.kvCapacityTokens);
  }

  function metricsText(): string {
    const l = `{engine="0",model_name=${JSON.stringify(o.model)}}`;
    const gauge = (name: string, help: string, v: number) =>
      `# HELP vllm:${name} ${help}\n# TYPE vllm:${name} gauge\nvllm:${name}${l} ${pyFloat(v)}\n`;
    const counter = (name: string, help: string, v: number) =>
      `# HELP vllm:${name}_total ${help}\n# TYPE vllm:${name}_total counter\nvllm:${name}_total${l} ${pyFloat(v)}\n`;
    const byReason = (['stop', 'length', 'abort'] as const)
      .map(
        (r) =>
          `vllm:request_success_total{engine="0",finished_reason="${r}",model_name=${JSON.stringify(o.model)}} ${pyFloat(counters[r])}\n`,
      )
      .join('');
    return (
      gauge('num_requests_running', 'Number of requests in model execution batches.', running.length) +
      gauge('num_requests_waiting', 'Number of requests waiting to be processed.', waiting.length) +
      gauge(o.kvGaugeName, 'KV-cache usage. 1 means 100 percent usage.', kvUsage()) +
      counter(
        'prefix_cache_queries',
        'Prefix cache queries, in terms of number of queried tokens.',
        counters.prefixQueries,
      ) +
      counter('prefix_cache_hits', 'Prefix cache hits, in terms of number of cached tokens.', counters.prefixHits) +
      counter(
        'mm_cache_queries',
        'Multi-modal cache queries, in terms of number of queried items.',
        counters.mmQueries,
      ) +
      counter('mm_cache_hits', 'Multi-modal cache hits, in terms of number of cached items.', counters.mmHits) +
      counter('prompt_tokens', 'Number of prefill tokens processed.', counters.prompt) +
      counter('generation_tokens', 'Number of generation tokens processed.', counters.generation) +
      `# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter\n${byReason}`
    );
  }

  const json = (res: ServerResponse, status: number, body: unknown): void =>
    void res.writeHead(status, { 'content-type': 'application/json', server: 'uvicorn' }).end(JSON.stringify(body));

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: any;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return json(res, 400, {
        error: { message: 'Invalid JSON body', type: 'BadRequestError', param: null, code: 400 },
      });
    }
    if (body?.model !== o.model) {
      return json(res, 404, {
        error: {
          message: `The model \`${body?.model}\` does not exist.`,
          type: 'NotFoundError',
          param: null,
          code: 404,
        },
      });
    }
    const images = imageKeys(body);
    const length = answerLength();
    const asked = Number(body.max_tokens ?? body.max_completion_tokens ?? length);
    const s: Seq = {
      id: `chatcmpl-${(++seqNo).toString(16).padStart(32, '0')}`,
      created: Math.floor(Date.now() / 1000),
      stream: body.stream === true,
      includeUsage: body.stream_options?.include_usage === true,
      maxTokens: Math.max(1, Math.min(length, Number.isFinite(asked) ? asked : length)),
      cut: Number.isFinite(asked) && asked < length,
      promptTokens: textTokens(body) + images.length * o.imageTokens,
      images,
      generated: 0,
      text: '',
      res,
      done: false,
    };
    res.on('close', () => {
      if (s.done) return;
      s.done = true; // leaves the batch at the next step, or is skipped in the queue
      counters.abort++;
      const w = waiting.indexOf(s);
      if (w >= 0) waiting.splice(w, 1);
    });
    // Headers go at once (Starlette's StreamingResponse); the role chunk waits for the first token.
    if (s.stream) res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', server: 'uvicorn' });
    if (o.zeroLatency) {
      while (!s.done) emitToken(s);
      return;
    }
    waiting.push(s);
    if (!stepTimer) step(false);
  }

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      chat(req, res).catch(() => res.destroy());
    } else if (req.method === 'GET' && path === '/v1/models') {
      const created = Math.floor(Date.now() / 1000);
      const card = {
        id: o.model,
        object: 'model',
        created,
        owned_by: 'vllm',
        root: o.model,
        parent: null,
        max_model_len: 65536,
        permission: [],
      };
      json(res, 200, { object: 'list', data: [card] });
    } else if (req.method === 'GET' && path === '/metrics') {
      res
        .writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', server: 'uvicorn' })
        .end(metricsText());
    } else if (req.method === 'GET' && path === '/sim/stats') {
      json(res, 200, { ...clock, meanLateMs: clock.steps ? clock.lateMs / clock.steps : 0 });
    } else if (req.method === 'GET' && path === '/health') {
      res.writeHead(200, { server: 'uvicorn', 'content-length': '0' }).end();
    } else {
      json(res, 404, { detail: 'Not Found' });
    }
  });
  server.keepAliveTimeout = 5_000; // uvicorn's default keep-alive
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}/v1`,
    port: actual,
    stats: () => ({
      running: running.length,
      waiting: waiting.length,
      finished: counters.stop + counters.length,
      imageQueries: counters.mmQueries,
      imageHits: counters.mmHits,
    }),
    async close() {
      if (stepTimer) clearTimeout(stepTimer);
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Command line: start N replicas in this process, print their URLs, serve until SIGTERM. */
async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      replicas: { type: 'string', default: '3' },
      'max-num-seqs': { type: 'string' },
      'answer-tokens': { type: 'string' },
      'answer-tokens-min': { type: 'string' },
      'image-cache-size': { type: 'string' },
      'image-prefill-ms': { type: 'string' },
      'kv-gauge': { type: 'string' },
      'zero-latency': { type: 'boolean', default: false },
      model: { type: 'string' },
    },
  });
  const num = (k: keyof typeof values) => (values[k] === undefined ? undefined : Number(values[k]));
  const opts: Partial<ReplicaOptions> = Object.fromEntries(
    Object.entries({
      model: values.model,
      maxNumSeqs: num('max-num-seqs'),
      answerTokens: num('answer-tokens'),
      answerTokensMin: num('answer-tokens-min'),
      imageCacheSize: num('image-cache-size'),
      imagePrefillMs: num('image-prefill-ms'),
      kvGaugeName: values['kv-gauge'] as ReplicaOptions['kvGaugeName'] | undefined,
      zeroLatency: values['zero-latency'] || undefined,
    }).filter(([, v]) => v !== undefined),
  );
  const replicas = await Promise.all(Array.from({ length: Number(values.replicas) }, () => startReplica(opts)));
  console.log(JSON.stringify({ urls: replicas.map((r) => r.url) }));
  const stop = () => void Promise.all(replicas.map((r) => r.close())).then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) await cli();
