/**
 * The HTTP edges a browser sees: which other origins may call the API (CORS, @fastify/cors) and
 * the security headers every answer carries (helmet). Both run in onRequest hooks that
 * are registered before any route or hook of ours, so refusals (401, 429, 503 while draining),
 * 404s and SSE streams (whose writer copies the headers already set) carry them too.
 *
 * The page at `/` replaces the API's Content-Security-Policy with its own (src/webui): the API
 * serves no HTML, so its policy forbids everything; the page's allows what the page loads.
 */
import cors from '@fastify/cors';
import helmet from 'helmet';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';

/** Request headers a browser page may send cross-origin (beyond the CORS-safelisted ones). */
const ALLOWED_HEADERS = ['authorization', 'content-type', 'x-api-key', 'x-request-id', 'traceparent', 'tracestate'];

/** Response headers a cross-origin page may read (the others stay hidden by the browser). */
const EXPOSED_HEADERS = [
  'x-request-id',
  'retry-after',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'x-queue-position',
  'x-queue-wait-ms',
  'x-glimpse-cache',
  'x-glimpse-worker',
];

/** Policy for everything that is not the page: JSON, SSE and text never need to load or run anything. */
const API_CSP_DIRECTIVES = {
  defaultSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'none'"],
};

/** What goes into Access-Control-Allow-Origin: the listed origins, `*`, or nothing (CORS off). */
export function corsOrigin(config: Pick<Config, 'corsOrigins' | 'corsAnyOrigin'>): string[] | '*' | false {
  if (config.corsAnyOrigin) return '*';
  return config.corsOrigins.length ? [...new Set(config.corsOrigins)] : false;
}

export async function registerSecurity(app: FastifyInstance, config: Config): Promise<void> {
  const origin = corsOrigin(config);
  if (origin !== false) {
    await app.register(cors, {
      // An exact match per origin, never a pattern: https://app.example.com.evil.test must not pass.
      origin,
      methods: ['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS'],
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      // Keys travel in headers, not cookies; `*` with credentials is what browsers forbid anyway.
      credentials: false,
      maxAge: config.corsMaxAge,
      // Preflights from an origin not listed still get an answer, without Allow-Origin: the browser refuses.
      strictPreflight: false,
    });
  }
  // Built once: @fastify/helmet builds helmet's middleware anew for every request (its CSP parsed
  // each time, about 3 % of a proxied request's CPU); the headers do not depend on the request.
  const securityHeaders = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: API_CSP_DIRECTIVES },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // TLS ends at the proxy in front (nginx, an ingress); whether to pin HTTPS is its decision.
    strictTransportSecurity: false,
    // With CORS on, listed origins read answers with fetch(); CORP only governs no-cors loads.
    crossOriginResourcePolicy: { policy: origin === false ? 'same-origin' : 'cross-origin' },
  });
  app.addHook('onRequest', (request, reply, done) =>
    securityHeaders(request.raw, reply.raw, (err) => done(err as Error | undefined)),
  );
}

/** The API docs page (Swagger UI at /docs): its own scripts and styles, the spec from this origin. */
export const DOCS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
