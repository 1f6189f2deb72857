/**
 * One call to the moderation service, in OpenAI's /v1/moderations shape: POST `{input, model?}`,
 * answer `{results: [{flagged, categories, category_scores}]}`. The URL is the operator's, yet it
 * is guarded as job webhooks are (every resolved address checked on each call, the connection
 * pinned to the checked addresses, no redirects followed), so a DNS answer that changes cannot
 * turn it toward cloud metadata or an internal service.
 *
 * Whatever goes wrong (no answer in time, a refused address, an error status, a body that is not
 * in the shape) is a ModerationFailure with a reason; what to do about it is the caller's choice
 * (fail open or closed). Nothing the service sends can throw anything else.
 */
import { request, type Agent, type Dispatcher } from 'undici';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { GlimpseError } from '../core/index.js';
import { checkDial, pinnedDispatcher, type DialTransport } from '../images/index.js';

export interface ModerationSettings {
  url: string;
  model?: string;
  apiKey?: string;
  timeoutMs: number;
  maxResponseBytes: number;
  allowPrivateNetworks: boolean;
}

export interface Verdict {
  flagged: boolean;
  /** Categories a flagged result named as true (e.g. violence, harassment). */
  categories: string[];
}

export type FailureReason = 'timeout' | 'unreachable' | 'forbidden' | 'http_status' | 'bad_response';

export class ModerationFailure extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'ModerationFailure';
  }
}

/** What a result must hold; other fields (category_scores, category_applied_input_types) are read only if present. */
const ResponseShape = Type.Object({
  results: Type.Array(
    Type.Object({
      flagged: Type.Boolean(),
      categories: Type.Optional(Type.Record(Type.String(), Type.Union([Type.Boolean(), Type.Null()]))),
    }),
    { minItems: 1 },
  ),
});

/** Connections kept to the service: moderation sits on every request's path, so calls run side by side. */
const CONNECTIONS = 64;

export class ModerationClient {
  /** Kept while the service's checked addresses stay the same, so calls reuse warm (TLS) connections. */
  private pinned: { key: string; agent: Agent } | undefined;

  constructor(
    private readonly s: ModerationSettings,
    private readonly transport: DialTransport = {},
  ) {}

  /** Throws ModerationFailure when the service gives no usable verdict; GlimpseError client_closed when `signal` fires. */
  async check(text: string, signal: AbortSignal): Promise<Verdict> {
    const timeout = AbortSignal.timeout(this.s.timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    const stopped = (err?: unknown): Error => {
      if (signal.aborted)
        return new GlimpseError('client_closed', 'The client went away while its content was being checked.');
      if (timeout.aborted)
        return new ModerationFailure('timeout', `no answer within ${this.s.timeoutMs} ms (moderation.timeoutMs)`);
      return new ModerationFailure(
        'unreachable',
        `could not reach the service (${(err as Error | undefined)?.message ?? 'aborted'})`,
      );
    };
    const url = new URL(this.s.url);
    // DNS cannot be cancelled; a resolver that hangs still loses the race against the deadline.
    const checked = await Promise.race([
      checkDial(url, this.s, this.transport),
      new Promise<never>((_, reject) => both.addEventListener('abort', () => reject(stopped()), { once: true })),
    ]);
    if (!checked.ok && checked.refused)
      throw new ModerationFailure(
        'forbidden',
        `${checked.host} resolves to an address glimpse may not reach (${checked.why}: ${checked.address})`,
      );
    if (!checked.ok) throw new ModerationFailure('unreachable', checked.error);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'glimpse-moderation' };
    if (this.s.apiKey) headers.authorization = `Bearer ${this.s.apiKey}`;
    const body = JSON.stringify({ input: text, ...(this.s.model ? { model: this.s.model } : {}) });
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'POST',
        dispatcher: this.agentFor(checked.host, checked.dial),
        headers,
        body,
        signal: both,
      });
    } catch (err) {
      throw stopped(err);
    }
    let raw: Buffer;
    try {
      raw = await readCapped(res.body, this.s.maxResponseBytes);
    } catch (err) {
      throw err instanceof ModerationFailure ? err : stopped(err);
    }
    if (res.statusCode < 200 || res.statusCode >= 300)
      throw new ModerationFailure('http_status', `the service answered HTTP ${res.statusCode}`);
    return parseVerdict(raw);
  }

  private agentFor(host: string, dial: { address: string; family: 4 | 6 }[]): Agent {
    const key = host + ' ' + dial.map((a) => a.address).join(',');
    if (this.pinned?.key !== key) {
      // The old agent finishes the calls it carries, then closes.
      this.pinned?.agent.close().catch(() => {});
      this.pinned = { key, agent: pinnedDispatcher(host, dial, undefined, CONNECTIONS) };
    }
    return this.pinned.agent;
  }

  async close(): Promise<void> {
    await this.pinned?.agent.destroy().catch(() => {});
    this.pinned = undefined;
  }
}

async function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      total += (chunk as Buffer).length;
      if (total > max)
        throw new ModerationFailure(
          'bad_response',
          `the answer is longer than ${max} bytes (moderation.maxResponseBytes)`,
        );
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    // Its late "aborted" error must not become an uncaught exception.
    body.on('error', () => {});
    body.destroy();
    throw err;
  }
  return Buffer.concat(chunks, total);
}

/** The verdict in a body, or bad_response: any result flagged flags the whole input. */
export function parseVerdict(raw: Buffer): Verdict {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ModerationFailure(
      'bad_response',
      `the answer is not JSON (${JSON.stringify(raw.subarray(0, 80).toString('utf8'))})`,
    );
  }
  if (!Value.Check(ResponseShape, parsed)) {
    const first = [...Value.Errors(ResponseShape, parsed)][0];
    throw new ModerationFailure(
      'bad_response',
      `the answer is not in the /v1/moderations shape: ${first ? `${first.instancePath || '(root)'} ${first.message}` : 'unexpected'}`,
    );
  }
  const flaggedResults = parsed.results.filter((r) => r.flagged);
  const categories = new Set<string>();
  for (const r of flaggedResults)
    for (const [name, on] of Object.entries(r.categories ?? {})) if (on === true) categories.add(name);
  return { flagged: flaggedResults.length > 0, categories: [...categories] };
}
