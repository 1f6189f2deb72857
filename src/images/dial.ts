/**
 * The address check every outbound request to a URL someone named goes through (job webhooks, the
 * moderation service): the host is resolved once, every address it has is checked against the
 * policy, and only the checked addresses may be dialed (see pinnedDispatcher), so a second DNS
 * answer (rebinding) is never used. Callers phrase the outcome in their own words and codes.
 */
import { systemResolver } from './fetch.js';
import {
  bareHost,
  firstRefusal,
  literalAddress,
  type AddressPolicy,
  type HostResolver,
  type ResolvedAddress,
} from './ssrf.js';

export interface DialTransport {
  /** DNS step; the system resolver when unset. */
  resolve?: HostResolver;
  /** Test seam, never set in production: the address actually dialed for a checked one (host names only). */
  dialAddress?: (checked: ResolvedAddress) => ResolvedAddress;
}

export type CheckedDial =
  | { ok: true; host: string; dial: ResolvedAddress[] }
  /** The name did not resolve, or resolved to nothing: may pass on a later try. */
  | { ok: false; host: string; refused: false; error: string }
  /** An address the policy forbids: `address` is for the server's log only (it maps internal names). */
  | { ok: false; host: string; refused: true; why: string; address: string };

/** Resolve `url`'s host and check every address; the addresses to pin the connection to, or why not. */
export async function checkDial(url: URL, policy: AddressPolicy, t: DialTransport = {}): Promise<CheckedDial> {
  const host = bareHost(url);
  const literal = literalAddress(host);
  let addresses: ResolvedAddress[];
  if (literal) addresses = [literal];
  else {
    try {
      addresses = await (t.resolve ?? systemResolver)(host);
    } catch (err) {
      return { ok: false, host, refused: false, error: `${host} could not be resolved (${(err as Error).message})` };
    }
  }
  if (!addresses.length) return { ok: false, host, refused: false, error: `${host} has no addresses` };
  const refused = firstRefusal(addresses, policy);
  if (refused) return { ok: false, host, refused: true, why: refused.why, address: refused.address };
  return { ok: true, host, dial: t.dialAddress && !literal ? addresses.map(t.dialAddress) : addresses };
}
