/**
 * HS256 JWTs that Zhipu's SDKs sign from an `id.secret` API key instead of sending the key:
 * header {alg: HS256, sign_type: SIGN}, payload {api_key: id, exp, timestamp}. A glimpse key whose
 * secret is `id.secret` accepts them: the signature is checked with `secret` (jose), then the
 * times, with the configured clock skew and a cap on how long one token may live.
 *
 * Times are milliseconds, as Zhipu's servers and its Python and Java SDKs write them. Zhipu's Node
 * SDK writes its clock in microseconds but adds its 180 s lifetime in milliseconds; a value that
 * can only be microseconds (past 1e14) is read that way, issue time from `timestamp` and lifetime
 * as exp − timestamp milliseconds, which is what it means. Plain seconds (RFC 7519) are read too.
 */
import { compactVerify, decodeJwt, errors } from 'jose';
import { GlimpseError } from '../core/index.js';

export interface JwtSettings {
  clockSkewSeconds: number;
  maxLifetimeSeconds: number;
}

const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
export const looksLikeJwt = (s: string) => JWT_RE.test(s);

const invalid = (why: string) => new GlimpseError('invalid_token', `The API token is not valid: ${why}.`);

/** Milliseconds from a JWT time field written in seconds, milliseconds or microseconds. */
const toMs = (v: number) => (v > 1e14 ? v / 1000 : v > 1e11 ? v : v * 1000);

function lifetime(payload: Record<string, unknown>): { issuedMs?: number; expiresMs: number } {
  const { exp, timestamp } = payload;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw invalid('it has no exp');
  if (timestamp !== undefined && (typeof timestamp !== 'number' || !Number.isFinite(timestamp)))
    throw invalid('its timestamp is not a number');
  const issuedMs = typeof timestamp === 'number' ? toMs(timestamp) : undefined;
  // Zhipu's Node SDK: a microsecond clock plus a lifetime in milliseconds.
  if (exp > 1e14 && typeof timestamp === 'number' && timestamp > 1e14)
    return { issuedMs, expiresMs: issuedMs! + (exp - timestamp) };
  return { issuedMs, expiresMs: toMs(exp) };
}

/**
 * The id of the key a token was signed with, once it is checked; throws invalid_token or
 * token_expired. `secretOf` gives the secret of an `id.secret` key by its id.
 */
export async function verifyKeyJwt(
  token: string,
  secretOf: (id: string) => string | undefined,
  settings: JwtSettings,
  now = Date.now(),
): Promise<string> {
  let payload: Record<string, unknown>;
  try {
    payload = decodeJwt(token);
  } catch {
    throw invalid('it is not a JWT');
  }
  const id = payload.api_key;
  const secret = typeof id === 'string' ? secretOf(id) : undefined;
  if (typeof id !== 'string' || secret === undefined) throw invalid('it names no API key of this server');
  try {
    await compactVerify(token, new TextEncoder().encode(secret), { algorithms: ['HS256'] });
  } catch (err) {
    throw invalid(
      err instanceof errors.JWSSignatureVerificationFailed ? 'its signature does not match' : 'it is not an HS256 JWT',
    );
  }
  const skew = settings.clockSkewSeconds * 1000;
  const { issuedMs, expiresMs } = lifetime(payload);
  if (issuedMs !== undefined && issuedMs > now + skew) throw invalid("it was issued ahead of this server's clock");
  if (expiresMs - (issuedMs ?? now) > settings.maxLifetimeSeconds * 1000)
    throw invalid(`it is valid for longer than ${settings.maxLifetimeSeconds} s`);
  if (now > expiresMs + skew) throw new GlimpseError('token_expired', 'The API token has expired: sign a new one.');
  return id;
}
