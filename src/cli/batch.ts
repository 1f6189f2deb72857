/**
 * `glimpse batch IN.jsonl`: run a file of requests against a glimpse (--server) or one started in
 * this process (--in-process), N at a time, writing each answer to --output as it finishes.
 *
 * Input lines are OpenAI batch lines ({custom_id, method, url, body}) or, for people, an image path
 * or URL, whitespace, and a prompt. Output lines are OpenAI's batch output format, one whole line
 * per write (O_APPEND), so a run stopped any way leaves only whole lines; running again skips every
 * custom_id already answered (status 200) and retries the rest. Ctrl-C starts no new request,
 * cancels those in flight, and exits 130 with the count done.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { imageUrl } from './ask.js';

export interface BatchOptions {
  input: string;
  output?: string;
  server?: string;
  apiKey?: string;
  concurrency: number;
  inProcess: boolean;
  config?: string;
}

interface Work {
  custom_id: string;
  body: Record<string, unknown> | { image: string; prompt: string };
}

/** Each line as a request; an unreadable line is a usage error naming it. */
function readInput(path: string): Work[] {
  const out: Work[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      if (line.startsWith('{')) {
        const o = JSON.parse(line) as { custom_id?: unknown; url?: unknown; body?: unknown };
        if (typeof o.custom_id !== 'string' || typeof o.body !== 'object' || o.body === null)
          throw new Error(`line ${i + 1}: a JSON line needs custom_id and body (an OpenAI batch line)`);
        if (o.url !== undefined && o.url !== '/v1/chat/completions')
          throw new Error(`line ${i + 1}: url ${String(o.url)} is not supported (only /v1/chat/completions)`);
        out.push({ custom_id: o.custom_id, body: o.body as Record<string, unknown> });
      } else {
        const m = /^(\S+)\s+(.+)$/.exec(line);
        if (!m) throw new Error(`line ${i + 1}: expected an image path or URL, then a prompt`);
        out.push({ custom_id: `line-${i + 1}`, body: { image: m[1]!, prompt: m[2]! } });
      }
    });
  return out;
}

/** custom_ids already answered in an earlier run's output (a torn last line is ignored). */
function answered(path: string): Set<string> {
  const done = new Set<string>();
  if (!existsSync(path)) return done;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    try {
      const o = JSON.parse(line) as { custom_id?: string; response?: { status_code?: number } };
      if (o.custom_id && o.response?.status_code === 200) done.add(o.custom_id);
    } catch {
      /* not a whole line */
    }
  }
  return done;
}

async function requestBody(w: Work): Promise<Record<string, unknown>> {
  if (!('image' in w.body && 'prompt' in w.body)) return { ...w.body, stream: false };
  const b = w.body as { image: string; prompt: string };
  return {
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: await imageUrl(b.image) } },
          { type: 'text', text: b.prompt },
        ],
      },
    ],
  };
}

const seconds = (s: number) =>
  s >= 3600
    ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${Math.round(s % 60)}s`
      : `${Math.round(s)}s`;

/** A one-line progress bar on a terminal; a line every few seconds elsewhere. */
function progress(total: number) {
  const start = Date.now();
  const tty = process.stderr.isTTY;
  let last = 0;
  return (done: number, failed: number, final = false) => {
    const now = Date.now();
    if (!final && now - last < (tty ? 100 : 5000)) return;
    last = now;
    const rate = done / Math.max((now - start) / 1000, 0.001);
    const eta = rate > 0 ? seconds((total - done) / rate) : '?';
    const width = 24;
    const filled = total ? Math.round((done / total) * width) : width;
    const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${rate.toFixed(1)} lines/s ETA ${eta}${failed ? ` failed ${failed}` : ''}`;
    process.stderr.write(tty ? `\r${text}\x1b[K${final ? '\n' : ''}` : text + '\n');
  };
}

export async function batchCommand(opts: BatchOptions): Promise<number> {
  const output = opts.output ?? opts.input.replace(/(\.jsonl)?$/, '.out.jsonl');
  let work: Work[];
  try {
    work = readInput(opts.input);
  } catch (err) {
    process.stderr.write(`glimpse batch: ${opts.input}: ${(err as Error).message}\n`);
    return 2;
  }
  const skip = answered(output);
  const todo = work.filter((w) => !skip.has(w.custom_id));
  process.stderr.write(
    `glimpse batch: ${work.length} requests, ${skip.size} already answered in ${output}, ${todo.length} to run\n`,
  );

  let server = opts.server ?? process.env.GLIMPSE_SERVER ?? 'http://127.0.0.1:8080';
  let close = async () => {};
  if (opts.inProcess) {
    const [{ loadConfig }, { createServer }, { createLogger }] = await Promise.all([
      import('../config/index.js'),
      import('../server/index.js'),
      import('../observability/index.js'),
    ]);
    const config = loadConfig({ flags: { host: '127.0.0.1', port: 0, logLevel: 'warn' }, file: opts.config });
    const s = await createServer(config, { logger: createLogger({ level: config.logLevel, format: 'json' }) });
    await s.engineStarted;
    server = await s.app.listen({ host: '127.0.0.1', port: 0 });
    close = () => s.close();
  }

  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.once('SIGINT', onSigint);
  const show = progress(todo.length);
  let done = 0;
  let failed = 0;
  let next = 0;
  const runOne = async (w: Work) => {
    let line: object;
    try {
      const res = await fetch(new URL('/v1/chat/completions', server), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
        },
        body: JSON.stringify(await requestBody(w)),
        signal: stop.signal,
      });
      const body: unknown = await res.json().catch(() => null);
      line = {
        id: `batch_req_${w.custom_id}`,
        custom_id: w.custom_id,
        response: { status_code: res.status, request_id: res.headers.get('x-request-id') ?? '', body },
        error: null,
      };
      if (!res.ok) failed++;
    } catch (err) {
      if (stop.signal.aborted) return; // not answered: the next run does it
      failed++;
      line = {
        id: `batch_req_${w.custom_id}`,
        custom_id: w.custom_id,
        response: null,
        error: { code: 'request_failed', message: (err as Error).message },
      };
    }
    appendFileSync(output, JSON.stringify(line) + '\n');
    done++;
    show(done, failed);
  };
  const lane = async () => {
    while (!stop.signal.aborted && next < todo.length) await runOne(todo[next++]!);
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, lane));
  } finally {
    process.removeListener('SIGINT', onSigint);
    show(done, failed, true);
    await close();
  }
  if (stop.signal.aborted) {
    process.stderr.write(
      `glimpse batch: stopped; ${done} answered this run, ${todo.length - done} left. Run the same command again to go on.\n`,
    );
    return 130;
  }
  process.stderr.write(`glimpse batch: ${done - failed} answered, ${failed} failed; results in ${output}\n`);
  return failed ? 1 : 0;
}
