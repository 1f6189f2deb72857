/** Helpers for pool tests: distinct images, health readings, concurrent chat requests. */
import sharp from 'sharp';
import type { RunningGlimpse } from './glimpse.js';
import type { MemberStats } from '../../src/engines/upstream/index.js';
import { UpstreamPool, type PoolOptions } from '../../src/engines/upstream/pool.js';

/** A pool over addresses nothing answers, with no checks running: for the rules that need no network. */
export function offlinePool(bases: string[], extra: Partial<PoolOptions> = {}): UpstreamPool {
  return new UpstreamPool({
    bases,
    breakerThreshold: 5,
    breakerCooldownMs: 1000,
    healthIntervalMs: 0,
    connectTimeoutMs: 1000,
    headersTimeoutMs: 1000,
    bodyTimeoutMs: 1000,
    ...extra,
  });
}

/** A small solid-colour PNG as a data URL; each colour is its own image fingerprint. */
export async function colourPng(r: number, g: number, b: number): Promise<string> {
  const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();
  return 'data:image/png;base64,' + png.toString('base64');
}

/** One replica as /health shows it. */
export type MemberView = MemberStats & { note?: string };

/** The members of the primary pool as /health shows them. */
export async function members(g: RunningGlimpse, pool = 'primary'): Promise<MemberView[]> {
  const h = (await (await fetch(g.url + '/health')).json()) as {
    upstreams: Array<{ pool: string; members: MemberView[] }>;
  };
  return h.upstreams.find((p) => p.pool === pool)!.members;
}

export const chatBody = (opts: { image?: string; model?: string; stream?: boolean; text?: string } = {}) => ({
  ...(opts.model ? { model: opts.model } : {}),
  stream: opts.stream ?? false,
  max_tokens: 16,
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: opts.text ?? 'What is this?' },
        ...(opts.image ? [{ type: 'image_url', image_url: { url: opts.image } }] : []),
      ],
    },
  ],
});

export const postChat = (g: RunningGlimpse, body: unknown) =>
  fetch(g.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** Send n requests at once and wait for every answer; returns the statuses. */
export async function burst(g: RunningGlimpse, n: number, body: (i: number) => unknown): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const res = await postChat(g, body(i));
      await res.arrayBuffer();
      return res.status;
    }),
  );
}

/** Poll an async condition until it holds; throws naming `what` (and the last value seen) if it never does. */
export async function eventually<T>(
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last seen ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
