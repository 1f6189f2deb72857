/**
 * Job webhooks: when a job ends, glimpse POSTs an event to the URL its submitter gave, signed the
 * Standard Webhooks way (the scheme OpenAI's and many others' webhooks use): headers
 * `webhook-id` (the same on every retry of one event), `webhook-timestamp` (unix seconds) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, so a receiver verifies it
 * with any Standard Webhooks library and the secret glimpse was given.
 *
 * The URL is the client's, so the request is guarded as image URLs are: http(s) only, no
 * credentials, every resolved address checked (loopback, private, link-local and the rest refused
 * unless private networks are allowed; link-local never), the connection pinned to the checked
 * address, and no redirects followed. Failures that may pass (connection errors, timeouts, 408,
 * 429, 5xx) are retried with backoff; other answers end the delivery.
 */
import { createHmac } from 'node:crypto';
import { request } from 'undici';
import { GlimpseError } from '../core/index.js';
import { checkDial, outboundUrlProblem, pinnedDispatcher, type DialTransport } from '../images/index.js';

export interface WebhookSettings {
  /** Signing secret: base64 key bytes, optionally prefixed `whsec_` (as Standard Webhooks libraries read it). */
  secret?: string;
  /** Let webhook URLs reach loopback and private networks (receivers on your own network). */
  allowPrivateNetworks: boolean;
  timeoutMs: number;
  maxAttempts: number;
  /** First wait between attempts; doubles each time. */
  backoffMs: number;
}

/** DNS and the test seam, as in image fetching. */
export type WebhookTransport = DialTransport;

export type Delivery =
  | { delivered: true; attempts: number; status: number }
  | { delivered: false; attempts: number; error: string; detail?: string };

const MAX_URL_LENGTH = 2048;
/** No wait between two attempts is longer than this, however many attempts are allowed. */
const MAX_BACKOFF_MS = 60_000;

/** Checks what can be checked when the job is submitted (syntax, scheme, a literal address); DNS is checked at delivery. */
export function checkWebhookUrl(raw: unknown, s: Pick<WebhookSettings, 'allowPrivateNetworks'>): string {
  if (typeof raw !== 'string' || raw.length > MAX_URL_LENGTH)
    throw new GlimpseError(
      'invalid_webhook_url',
      `webhook must be an http(s) URL of at most ${MAX_URL_LENGTH} characters.`,
      { param: 'webhook' },
    );
  const problem = outboundUrlProblem(raw, s);
  if (problem?.kind === 'forbidden')
    throw new GlimpseError('webhook_url_forbidden', `webhook ${problem.why}.`, { param: 'webhook' });
  if (problem)
    throw new GlimpseError(
      'invalid_webhook_url',
      `webhook ${problem.why}${problem.kind === 'credentials' ? '; verify deliveries by their signature instead' : ''}.`,
      { param: 'webhook' },
    );
  return new URL(raw).href;
}

/** The Standard Webhooks signature header value for one message. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return 'v1,' + createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
}

/** `detail`: for the server's log only (e.g. the refused address), never shown to the job's owner. */
type Attempt = { ok: true; status: number } | { ok: false; retry: boolean; error: string; detail?: string };

async function attempt(
  rawUrl: string,
  id: string,
  body: string,
  s: WebhookSettings,
  t: WebhookTransport,
  signal: AbortSignal,
): Promise<Attempt> {
  const url = new URL(rawUrl);
  const checked = await checkDial(url, s, t);
  // Refused, and no connection made: trying again would only be refused again.
  // The address stays out of what the job's owner can read (it would map internal names); the log has it.
  if (!checked.ok && checked.refused)
    return {
      ok: false,
      retry: false,
      error: `webhook_url_forbidden: ${checked.host} resolves to an address glimpse may not reach (${checked.why})`,
      detail: checked.address,
    };
  if (!checked.ok) return { ok: false, retry: true, error: checked.error };
  const dispatcher = pinnedDispatcher(checked.host, checked.dial);
  const timestamp = Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'glimpse-webhook',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
  };
  if (s.secret) headers['webhook-signature'] = signWebhook(s.secret, id, timestamp, body);
  try {
    const res = await request(url, {
      method: 'POST',
      dispatcher,
      headers,
      body,
      signal: AbortSignal.any([signal, AbortSignal.timeout(s.timeoutMs)]),
    });
    res.body.on('error', () => {});
    res.body.destroy();
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, status: res.statusCode };
    const retry = res.statusCode === 408 || res.statusCode === 429 || res.statusCode >= 500;
    return { ok: false, retry, error: `the receiver answered HTTP ${res.statusCode}` };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    return { ok: false, retry: true, error: `could not deliver (${(err as Error).message})` };
  } finally {
    dispatcher.destroy().catch(() => {});
  }
}

/** Deliver one event, retrying what may pass; `signal` (shutdown) stops it between or during attempts by throwing. */
export async function deliverWebhook(
  url: string,
  id: string,
  payload: unknown,
  s: WebhookSettings,
  t: WebhookTransport = {},
  signal: AbortSignal = new AbortController().signal,
): Promise<Delivery> {
  const body = JSON.stringify(payload);
  let last = '';
  for (let n = 1; n <= s.maxAttempts; n++) {
    const r = await attempt(url, id, body, s, t, signal);
    if (r.ok) return { delivered: true, attempts: n, status: r.status };
    last = r.error;
    if (!r.retry || n === s.maxAttempts)
      return { delivered: false, attempts: n, error: last, ...(r.detail ? { detail: r.detail } : {}) };
    await new Promise<void>((resolve, reject) => {
      const stop = () => (clearTimeout(timer), reject(signal.reason));
      const timer = setTimeout(
        () => (signal.removeEventListener('abort', stop), resolve()),
        Math.min(MAX_BACKOFF_MS, s.backoffMs * 2 ** (n - 1)),
      );
      signal.addEventListener('abort', stop, { once: true });
    });
  }
  return { delivered: false, attempts: s.maxAttempts, error: last };
}
