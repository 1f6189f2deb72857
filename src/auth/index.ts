/**
 * API keys. When keys are configured, every model route needs one (`Authorization: Bearer <key>`,
 * or `X-API-Key`, or `?api_key=` for WebSocket clients that cannot set headers); health, readiness,
 * docs and the page stay open so probes and people can reach them. Requests carry a `keyId` (the
 * key's name, never the secret) that the scheduler uses for fairness and the cache for scoping.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GlimpseError } from '../core/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Name of the API key that authenticated this request (undefined when keys are off). */
    keyId?: string;
  }
}

export interface ApiKey {
  /** Shown in logs and used for fairness and cache scoping. */
  name: string;
  digest: Buffer;
}

const digest = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

/**
 * Keys from config: each entry is `name:secret` or just `secret` (named by a digest prefix).
 * A file holds one entry a line; blank lines and `#` comments are skipped.
 */
export function parseApiKeys(entries: string[], file?: string): ApiKey[] {
  const all = [...entries];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`Cannot read the API keys file ${file}: ${(err as Error).message}`);
    }
    for (const line of text.split(/\r?\n/)) if (line.trim() && !line.trim().startsWith('#')) all.push(line.trim());
  }
  return all.map((entry) => {
    const i = entry.indexOf(':');
    const [name, secret] = i > 0 ? [entry.slice(0, i), entry.slice(i + 1)] : ['key-' + digest(entry).toString('hex').slice(0, 8), entry];
    if (secret.length < 8) throw new Error(`API key '${name}' is shorter than 8 characters.`);
    return { name, digest: digest(secret) };
  });
}

/** Routes that need a key when keys are on. */
const PROTECTED = /^\/(v1\/|infer(\/|$|\?)|api\/|ws\/)/;

function presentedSecret(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1];
  }
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header) return header;
  if (request.url.startsWith('/ws/')) {
    const q = new URL(request.url, 'http://x').searchParams.get('api_key');
    if (q) return q;
  }
  return undefined;
}

/** Constant-time lookup: every key is compared, whichever matches. */
export function findKey(keys: ApiKey[], secret: string): ApiKey | undefined {
  const d = digest(secret);
  let found: ApiKey | undefined;
  for (const k of keys) if (timingSafeEqual(k.digest, d) && !found) found = k;
  return found;
}

export function registerApiKeys(app: FastifyInstance, keys: ApiKey[]): void {
  if (!keys.length) return;
  app.addHook('onRequest', async (request, reply) => {
    if (request.method === 'OPTIONS' || !PROTECTED.test(request.url)) return;
    const secret = presentedSecret(request);
    const key = secret ? findKey(keys, secret) : undefined;
    if (!key) {
      reply.header('www-authenticate', 'Bearer realm="glimpse"');
      throw new GlimpseError('unauthorized', secret ? 'The API key is not valid.' : 'This server needs an API key: send Authorization: Bearer <key>.');
    }
    request.keyId = key.name;
  });
}

export { Quotas, memoryCounter, quotasEnabled, redisCounter, type QuotaCounter, type QuotaLimits, type QuotaSettings } from './quotas.js';
