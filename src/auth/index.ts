/**
 * API keys. When keys are configured, every model route needs one (`Authorization: Bearer <key>`,
 * or `X-API-Key`, or `?api_key=` for WebSocket clients that cannot set headers); health, readiness,
 * docs and the page stay open so probes and people can reach them. Requests carry a `keyId` (the
 * key's name, never the secret) that the scheduler uses for fairness and the cache for scoping.
 *
 * Keys from a file can be rotated without a restart: the ring re-reads the file every
 * `apiKeysReloadSeconds` (a changed Kubernetes Secret or a rewritten file is picked up) and on
 * `reload()` (SIGHUP). A file that cannot be read or parsed, or that holds no key at all, leaves
 * the keys as they were and is reported: a half-written file never locks everyone out or opens
 * the server.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GlimpseError } from '../core/index.js';
import { looksLikeJwt, verifyKeyJwt, type JwtSettings } from './jwt.js';

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
  /** A key written `id.secret` (Zhipu's form) also accepts HS256 JWTs signed with `secret` that name `id`: kept to check them. */
  jwt?: { id: string; secret: string };
}

const digest = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

/**
 * Keys from config: each entry is `name:secret` or just `secret` (named by a digest prefix).
 * A file holds one entry a line; blank lines and `#` comments are skipped.
 */
export function parseApiKeys(entries: string[], file?: string): ApiKey[] {
  return keysFrom(entries, file === undefined ? undefined : readKeysFile(file));
}

function readKeysFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`Cannot read the API keys file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function keysFrom(entries: string[], fileText: string | undefined): ApiKey[] {
  const all = [...entries];
  for (const line of fileText?.split(/\r?\n/) ?? [])
    if (line.trim() && !line.trim().startsWith('#')) all.push(line.trim());
  return all.map((entry) => {
    const i = entry.indexOf(':');
    const [name, secret] =
      i > 0 ? [entry.slice(0, i), entry.slice(i + 1)] : ['key-' + digest(entry).toString('hex').slice(0, 8), entry];
    if (secret.length < 8) throw new Error(`API key '${name}' is shorter than 8 characters.`);
    const parts = /^([^.\s]+)\.([^.\s]+)$/.exec(secret);
    return { name, digest: digest(secret), ...(parts ? { jwt: { id: parts[1]!, secret: parts[2]! } } : {}) };
  });
}

/** Routes that need a key when keys are on. */
const PROTECTED = /^\/(v1\/|infer(\/|$|\?)|api\/|ws\/)/;

function presentedSecret(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1];
    // Zhipu's Node SDK sends its JWT with no scheme.
    if (looksLikeJwt(auth.trim())) return auth.trim();
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

export type ReloadOutcome =
  { outcome: 'unchanged' | 'reloaded'; keys: number } | { outcome: 'error'; keys: number; error: string };

/** The API keys in force: those given as settings plus those in the keys file, re-read on demand or on a timer. */
export class ApiKeyRing {
  private keys: ApiKey[];
  private fileText: string | undefined;
  /** The last file content (or read error) that was refused: the timer reports it once, not on every tick. */
  private refused: string | undefined;
  /** New content the timer has read once; it is taken when the next read agrees. */
  private readBefore: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  readonly reloads = { reloaded: 0, error: 0 };

  /** Throws (with a message for the operator) when the keys given at start are unusable. */
  constructor(
    private readonly entries: string[],
    private readonly file?: string,
  ) {
    this.fileText = file === undefined ? undefined : readKeysFile(file);
    this.keys = keysFrom(entries, this.fileText);
  }

  /** Whether requests need a key: any key now, or a file that may hold keys later. */
  get enforced(): boolean {
    return this.keys.length > 0 || this.file !== undefined;
  }

  get size(): number {
    return this.keys.length;
  }

  find(secret: string): ApiKey | undefined {
    return findKey(this.keys, secret);
  }

  /** The `id.secret` key with this id. */
  byJwtId(id: string): ApiKey | undefined {
    return this.keys.find((k) => k.jwt?.id === id);
  }

  /**
   * Re-reads the keys file; on any problem the keys in force stay as they are. `quiet` (the
   * timer): new content is taken only once two reads in a row agree (a file being rewritten in
   * place is not caught half-written), and content already refused counts as unchanged rather than
   * as a new error. Without it (SIGHUP) the file is taken, or refused, as it is now.
   */
  reload(quiet = false): ReloadOutcome {
    if (this.file === undefined) return { outcome: 'unchanged', keys: this.keys.length };
    let text: string;
    try {
      text = readKeysFile(this.file);
    } catch (err) {
      // Unreadable (missing, no permission): the message stands for the content.
      return this.refuse(`unreadable: ${(err as Error).message}`, (err as Error).message, quiet);
    }
    if (text === this.fileText) return { outcome: 'unchanged', keys: this.keys.length };
    if (quiet && text !== this.readBefore) {
      this.readBefore = text;
      return { outcome: 'unchanged', keys: this.keys.length };
    }
    let keys: ApiKey[];
    try {
      keys = keysFrom(this.entries, text);
      // The file's own keys, apart from those given as settings: a file that lost all of them is a mistake, not a revocation.
      if (keys.length === this.entries.length && this.keys.length > this.entries.length) {
        throw new Error(
          `The API keys file ${this.file} holds no key; keeping the ${this.keys.length - this.entries.length} it had.`,
        );
      }
    } catch (err) {
      return this.refuse(text, (err as Error).message, quiet);
    }
    this.keys = keys;
    this.fileText = text;
    this.readBefore = undefined;
    this.refused = undefined;
    this.reloads.reloaded++;
    return { outcome: 'reloaded', keys: keys.length };
  }

  /** A refused file: counted and reported once per distinct content (`quiet`), or every time (SIGHUP). */
  private refuse(signature: string, error: string, quiet: boolean): ReloadOutcome {
    if (quiet && signature === this.refused) return { outcome: 'unchanged', keys: this.keys.length };
    this.refused = signature;
    this.reloads.error++;
    return { outcome: 'error', keys: this.keys.length, error };
  }

  /** Re-read the file every `seconds` (0: never), telling `report` what changed or failed. */
  watch(seconds: number, report: (r: ReloadOutcome) => void): void {
    if (this.file === undefined || seconds <= 0) return;
    this.timer = setInterval(() => {
      const r = this.reload(true);
      if (r.outcome !== 'unchanged') report(r);
    }, seconds * 1000);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }
}

export function registerApiKeys(app: FastifyInstance, ring: ApiKeyRing, jwt: JwtSettings): void {
  if (!ring.enforced) return;
  app.addHook('onRequest', async (request, reply) => {
    if (request.method === 'OPTIONS' || !PROTECTED.test(request.url)) return;
    // A keys file that holds no key yet: nothing to check against (the server refuses a public bind then).
    if (!ring.size) return;
    const secret = presentedSecret(request);
    let key = secret ? ring.find(secret) : undefined;
    // Not a key itself but a JWT signed from one (Zhipu's SDKs): its own errors say what is wrong with it.
    if (!key && secret && looksLikeJwt(secret))
      key = ring.byJwtId(await verifyKeyJwt(secret, (id) => ring.byJwtId(id)?.jwt?.secret, jwt));
    if (!key) {
      reply.header('www-authenticate', 'Bearer realm="glimpse"');
      throw new GlimpseError(
        'unauthorized',
        secret ? 'The API key is not valid.' : 'This server needs an API key: send Authorization: Bearer <key>.',
      );
    }
    request.keyId = key.name;
  });
}

export {
  Quotas,
  memoryCounter,
  quotasEnabled,
  redisCounter,
  type QuotaCounter,
  type QuotaLimits,
  type QuotaSettings,
} from './quotas.js';
