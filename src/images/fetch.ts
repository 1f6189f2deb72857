/**
 * Fetch an image URL without letting the URL reach anything it should not (SSRF).
 *
 * For each hop (the URL, then each redirect, at most maxRedirects): scheme must be http(s); the
 * host passes the allow/deny lists; the name is resolved once and every address checked; then the
 * connection is made to exactly that checked address (a per-hop dispatcher whose lookup answers
 * only the pinned address), so a second, different DNS answer (rebinding) is never used. TLS SNI
 * and the Host header stay the URL's host name. The body is streamed with a byte cap, and the
 * whole fetch, redirects included, has one time cap.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { rootCertificates } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { GlimpseError } from '../core/index.js';
import { checkEncodedBytes, type ImageSettings } from './limits.js';
import {
  bareHost,
  checkAddresses,
  checkHostName,
  literalAddress,
  type HostResolver,
  type ResolvedAddress,
} from './ssrf.js';

export interface FetchImageOptions {
  settings: ImageSettings;
  signal?: AbortSignal;
  /** DNS step; defaults to the system resolver (every address, both families). */
  resolve?: HostResolver;
  /**
   * Test seam, never set in production: maps the checked address to the one actually dialed, so
   * tests can stand a "public" address in for a loopback server. The check still runs on the
   * resolver's answer. Applies to host names only: an IP-literal URL is dialed as written.
   */
  dialAddress?: (checked: ResolvedAddress) => ResolvedAddress;
  /** Extra CA certificates (PEM) to trust for image hosts, on top of the system's (private object storage, tests). */
  ca?: string;
}

export const systemResolver: HostResolver = async (hostname) => {
  const answers = await dnsLookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function fetchFailed(message: string, cause?: unknown): GlimpseError {
  return new GlimpseError('image_fetch_failed', message, { param: 'image_url', cause });
}

function parseImageUrl(raw: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw new GlimpseError('invalid_image_url', 'The image URL is not a valid URL.', { param: 'image_url' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new GlimpseError(
      'image_url_forbidden',
      `Image URLs must use http or https, not ${url.protocol.replace(/:$/, '')}.`,
      { param: 'image_url' },
    );
  }
  if (url.username || url.password) {
    throw new GlimpseError('image_url_forbidden', 'Image URLs may not carry credentials.', { param: 'image_url' });
  }
  return url;
}

/** Resolve and check one hop's host; the answers are the only addresses the connection may use. */
async function checkedAddresses(url: URL, opts: FetchImageOptions): Promise<ResolvedAddress[]> {
  const s = opts.settings;
  const hostname = bareHost(url);
  checkHostName(hostname, s);
  const literal = literalAddress(hostname);
  let addresses: ResolvedAddress[];
  if (literal) {
    addresses = [literal];
  } else {
    try {
      addresses = await (opts.resolve ?? systemResolver)(hostname);
    } catch (err) {
      throw fetchFailed(`The image host ${hostname} could not be resolved.`, err);
    }
  }
  checkAddresses(hostname, addresses, s);
  return addresses;
}

/**
 * A dispatcher that can only ever connect to the `pinned` addresses (for `hostname`). All of them
 * are offered when net asks for all (happy eyeballs), so one dead address does not fail the fetch.
 * One connection by default (a single fetch); a client that calls the same host often may keep more.
 */
export function pinnedDispatcher(hostname: string, pinned: ResolvedAddress[], ca?: string, connections = 1): Agent {
  return new Agent({
    connections,
    pipelining: 0,
    connect: {
      // Certificates are checked against the host name (servername), never the pinned IP.
      ...(ca ? { ca: [...rootCertificates, ca] } : {}),
      // net/tls call this instead of DNS; it answers with the address already checked, nothing else.
      lookup(
        name: string,
        options: { all?: boolean },
        cb: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
      ) {
        if (name.replace(/^\[|\]$/g, '') !== hostname) {
          cb(new Error(`refusing to resolve ${name}: this connection is pinned to ${hostname}`), '', 0);
        } else if (options?.all) {
          cb(
            null,
            pinned.map((a) => ({ address: a.address, family: a.family })),
          );
        } else {
          cb(null, pinned[0]!.address, pinned[0]!.family);
        }
      },
    } as never,
  });
}

/** Fetch the image bytes at `rawUrl` under every guard. Throws GlimpseError. */
export async function fetchImageBytes(rawUrl: string, opts: FetchImageOptions): Promise<Buffer> {
  const s = opts.settings;
  const timeout = AbortSignal.timeout(s.fetchTimeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let url = parseImageUrl(rawUrl);

  for (let hop = 0; ; hop++) {
    const checked = await checkedAddresses(url, opts);
    if (signal.aborted) throw abortError(signal, timeout, s);
    const hostname = bareHost(url);
    const dial = opts.dialAddress ? checked.map(opts.dialAddress) : checked;
    const dispatcher = pinnedDispatcher(hostname, dial, opts.ca);
    try {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: 'GET',
          dispatcher,
          signal,
          headers: { accept: 'image/*', 'user-agent': 'glimpse-image-fetch' },
        });
      } catch (err) {
        if (signal.aborted) throw abortError(signal, timeout, s);
        throw fetchFailed(`Could not connect to the image host ${hostname}.`, err);
      }

      if (REDIRECTS.has(res.statusCode)) {
        discard(res.body);
        const location = res.headers.location;
        const target = Array.isArray(location) ? location[0] : location;
        if (!target) throw fetchFailed(`The image URL answered HTTP ${res.statusCode} without a Location.`);
        if (hop >= s.maxRedirects) {
          throw fetchFailed(`The image URL redirected more than ${s.maxRedirects} times (images.maxRedirects).`);
        }
        url = parseImageUrl(target, url);
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        discard(res.body);
        throw fetchFailed(`Fetching the image URL answered HTTP ${res.statusCode}.`);
      }

      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > s.maxBytes) {
        discard(res.body);
        checkEncodedBytes(declared, s);
      }
      return await readCapped(res.body, s, signal, timeout);
    } finally {
      dispatcher.destroy().catch(() => {});
    }
  }
}

function abortError(signal: AbortSignal, timeout: AbortSignal, s: ImageSettings): Error {
  if (timeout.aborted)
    return fetchFailed(`Fetching the image URL took longer than ${s.fetchTimeoutMs} ms (images.fetchTimeoutMs).`);
  return (signal.reason as Error) ?? new DOMException('aborted', 'AbortError');
}

/** Drop a body we will not read; its late "aborted" error must not become an uncaught exception. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

async function readCapped(
  body: Dispatcher.ResponseData['body'],
  s: ImageSettings,
  signal: AbortSignal,
  timeout: AbortSignal,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      total += buf.length;
      // The cap stops the download as soon as it is crossed, not after buffering it all.
      checkEncodedBytes(total, s, true);
      chunks.push(buf);
    }
  } catch (err) {
    discard(body);
    if (err instanceof GlimpseError) throw err;
    if (signal.aborted) throw abortError(signal, timeout, s);
    throw fetchFailed('The image download broke off before it finished.', err);
  }
  return Buffer.concat(chunks, total);
}
