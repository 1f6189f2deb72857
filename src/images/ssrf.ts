/**
 * Which hosts and addresses an image URL may reach. Every address a name resolves to is checked
 * (one bad answer refuses the URL), IPv4-mapped IPv6 is unwrapped first, and IPv6 must be global
 * unicast (2000::/3): tunnels and translation prefixes that can embed a private IPv4 are refused.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { GlimpseError } from '../core/index.js';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has (the injectable DNS step). */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** Ranges opened by images.allowPrivateNetworks (storage on the operator's own network). */
const PRIVATE_RANGES = new Set(['loopback', 'private', 'carrierGradeNat', 'uniqueLocal']);

export interface AddressPolicy {
  allowPrivateNetworks: boolean;
}

/** Why this address may not be reached, or null when it may. */
export function addressRefusal(address: string, policy: AddressPolicy): string | null {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  const range = ip.range();
  if (range === 'unicast') {
    if (ip.kind() === 'ipv4') return null;
    // IPv6 "unicast" in ipaddr.js also covers deprecated IPv4-compatible ::a.b.c.d; only global unicast is public.
    const first = (ip as ipaddr.IPv6).parts[0]!;
    return first >= 0x2000 && first <= 0x3fff ? null : 'outside IPv6 global unicast';
  }
  if (policy.allowPrivateNetworks && PRIVATE_RANGES.has(range)) return null;
  return range;
}

/** A URL's host, without the brackets of an IPv6 literal. */
export function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** The address an IP-literal host names (no DNS to ask), or undefined for a host name. */
export function literalAddress(host: string): ResolvedAddress | undefined {
  const family = isIP(host);
  return family ? { address: host, family: family === 6 ? 6 : 4 } : undefined;
}

/** The first of `addresses` that may not be reached and why, or undefined when every one may. */
export function firstRefusal(
  addresses: readonly ResolvedAddress[],
  policy: AddressPolicy,
): { address: string; why: string } | undefined {
  for (const a of addresses) {
    const why = addressRefusal(a.address, policy);
    if (why) return { address: a.address, why };
  }
  return undefined;
}

/** Host names match a listed domain exactly or as a subdomain (".example.com"). */
export function domainMatches(hostname: string, domains: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return domains.some((d) => {
    const dom = d
      .trim()
      .toLowerCase()
      .replace(/^\*?\./, '')
      .replace(/\.$/, '');
    return dom !== '' && (host === dom || host.endsWith('.' + dom));
  });
}

export interface HostPolicy extends AddressPolicy {
  allowDomains: readonly string[];
  denyDomains: readonly string[];
}

function forbidden(message: string): GlimpseError {
  return new GlimpseError('image_url_forbidden', message, { param: 'image_url' });
}

/** Refuses a host by the allow/deny lists (before any DNS). */
export function checkHostName(hostname: string, policy: HostPolicy): void {
  if (policy.denyDomains.length && domainMatches(hostname, policy.denyDomains)) {
    throw forbidden(`Image URLs on ${hostname} are not allowed (images.denyDomains).`);
  }
  if (policy.allowDomains.length && !domainMatches(hostname, policy.allowDomains)) {
    throw forbidden(`Image URLs on ${hostname} are not allowed: it is not in images.allowDomains.`);
  }
}

/** Refuses unless every address may be reached. */
export function checkAddresses(hostname: string, addresses: readonly ResolvedAddress[], policy: AddressPolicy): void {
  if (!addresses.length)
    throw new GlimpseError('image_fetch_failed', `The image host ${hostname} has no addresses.`, {
      param: 'image_url',
    });
  const refused = firstRefusal(addresses, policy);
  if (refused) {
    // The address a name resolves to is not told: from the server's resolver, that would let a
    // client map internal DNS names one request at a time. An IP literal is the client's own words.
    const shown = hostname === refused.address ? hostname : `${hostname} (it resolves to a ${refused.why} address)`;
    throw forbidden(`Image URLs may not point at ${shown}: ${refused.why} addresses are not reachable from glimpse.`);
  }
}

/** What is wrong with a URL glimpse was told to send to, found without DNS; `forbidden`: its literal address may not be reached. */
export interface UrlProblem {
  kind: 'syntax' | 'scheme' | 'credentials' | 'forbidden';
  /** Reads after the URL's name: "webhook is not a valid URL". */
  why: string;
}

/** Syntax, scheme (http or https), no credentials in it, and an IP-literal host checked against the policy. */
export function outboundUrlProblem(raw: string, policy: AddressPolicy): UrlProblem | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { kind: 'syntax', why: 'is not a valid URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { kind: 'scheme', why: `must use http or https, not ${url.protocol.replace(/:$/, '')}` };
  if (url.username || url.password) return { kind: 'credentials', why: 'may not carry credentials' };
  const host = bareHost(url);
  const literal = literalAddress(host);
  const refused = literal && firstRefusal([literal], policy);
  if (refused)
    return {
      kind: 'forbidden',
      why: `may not point at ${host}: ${refused.why} addresses are not reachable from glimpse`,
    };
  return undefined;
}
