import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseSseData } from '../engines/upstream/sse-parse.js';

const MIME_BY_EXT: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
};

/** An http(s) URL as it is; a local file as a data URL. Throws when the file cannot be read. */
export async function imageUrl(image: string): Promise<string> {
  if (/^https?:\/\//i.test(image)) return image;
  const data = await readFile(image);
  return `data:${MIME_BY_EXT[extname(image).toLowerCase()] ?? 'application/octet-stream'};base64,${data.toString('base64')}`;
}

export async function askCommand(opts: {
  image: string;
  prompt: string;
  server: string;
  apiKey?: string;
  model?: string;
  maxTokens?: number;
}): Promise<number> {
  let url: string;
  try {
    url = await imageUrl(opts.image);
  } catch (err) {
    process.stderr.write(`glimpse ask: cannot read ${opts.image}: ${(err as Error).message}\n`);
    return 2;
  }
  const body = {
    ...(opts.model ? { model: opts.model } : {}),
    stream: true,
    ...(opts.maxTokens ? { max_tokens: opts.maxTokens } : {}),
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url } },
          { type: 'text', text: opts.prompt },
        ],
      },
    ],
  };
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  let res: Response;
  try {
    res = await fetch(new URL('/v1/chat/completions', opts.server), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal: ac.signal,
    });
  } catch (err) {
    process.stderr.write(
      `glimpse ask: cannot reach ${opts.server}: ${(err as Error).cause ?? (err as Error).message}\n`,
    );
    return 1;
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    let msg = text;
    try {
      const e = JSON.parse(text) as { error?: { message?: string; code?: string } };
      if (e.error) msg = `${e.error.message} (${e.error.code})`;
    } catch {
      /* plain text */
    }
    process.stderr.write(`glimpse ask: HTTP ${res.status}: ${msg}\n`);
    return 1;
  }
  let inReasoning = false;
  try {
    for await (const data of parseSseData(res.body as unknown as AsyncIterable<Uint8Array>)) {
      if (data === '[DONE]') break;
      const chunk = JSON.parse(data) as {
        error?: { message: string; code: string };
        choices?: Array<{ delta?: { content?: string; reasoning_content?: string } }>;
      };
      if (chunk.error) {
        process.stdout.write('\n');
        process.stderr.write(`glimpse ask: ${chunk.error.message} (${chunk.error.code})\n`);
        return 1;
      }
      const d = chunk.choices?.[0]?.delta;
      if (d?.reasoning_content) {
        if (!inReasoning) process.stderr.write('\x1b[2m[thinking] ');
        inReasoning = true;
        process.stderr.write(d.reasoning_content);
      }
      if (d?.content) {
        if (inReasoning) process.stderr.write('\x1b[0m\n');
        inReasoning = false;
        process.stdout.write(d.content);
      }
    }
  } catch (err) {
    if (ac.signal.aborted) return 130;
    process.stderr.write(`\nglimpse ask: the stream broke: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write('\n');
  return 0;
}
