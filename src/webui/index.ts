/**
 * The web page's door: serves the built page (web/dist) at `/` on glimpse's own port.
 *
 * Hashed assets (/assets/*) never change under their name, so they are cached for a year as
 * immutable; index.html is revalidated on every load so a new build reaches people at once.
 * Every page response carries a strict Content-Security-Policy: the page has no inline script,
 * loads nothing from elsewhere, and talks only to its own origin.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifySchema } from 'fastify';

// Keeps the page's own routes out of the API docs (@fastify/swagger reads `hide`).
const HIDDEN = { hide: true } as FastifySchema;

export interface WebUiOptions {
  /** Folder holding the built page; found next to the package when left out. */
  distDir?: string;
  /** Longest image edge the server resizes to (config images.maxEdge); the page resizes to the same bound before upload. */
  imageMaxEdge?: number;
  /** Largest encoded image the server accepts, in bytes. */
  imageMaxBytes?: number;
  /** Largest number of images per message the page allows. */
  maxImagesPerMessage?: number;
  /** Seconds between SSE heartbeats, so the page can tell a stalled stream from a slow one. */
  heartbeatInterval?: number;
}

export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    // data: for image previews, blob: for pasted images.
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

/** Walks up from this file to the package root (works from src/ under tsx and from dist/src/ when compiled). */
export function defaultWebDistDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'web'))) return join(dir, 'web', 'dist');
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return resolve(process.cwd(), 'web', 'dist');
}

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>glimpse: page not built</title></head>
<body><main><h1>glimpse is running, but its web page has not been built</h1>
<p>Build it from the repository root with <code>npm run build:web</code> (or <code>npm run build</code>, which <code>npm install</code> runs), then reload.</p>
<p>The API works without the page: <code>POST /v1/chat/completions</code>, <code>GET /v1/models</code>, <code>GET /health</code>.</p></main></body></html>`;

function securityHeaders(reply: FastifyReply): void {
  for (const [k, v] of Object.entries(PAGE_SECURITY_HEADERS)) reply.header(k, v);
}

export async function registerWebUi(app: FastifyInstance, opts: WebUiOptions = {}): Promise<void> {
  const root = opts.distDir ?? defaultWebDistDir();
  const uiConfig = {
    imageMaxEdge: opts.imageMaxEdge ?? 1024,
    imageMaxBytes: opts.imageMaxBytes ?? 10 * 1024 * 1024,
    maxImagesPerMessage: opts.maxImagesPerMessage ?? 8,
    heartbeatSeconds: opts.heartbeatInterval ?? 15,
  };

  await app.register(async (scope) => {
    scope.addHook('onSend', async (_req, reply, payload) => {
      securityHeaders(reply);
      return payload;
    });

    scope.get('/ui/config.json', { schema: HIDDEN }, async (_req, reply) => {
      reply.header('cache-control', 'no-cache');
      return uiConfig;
    });

    if (!existsSync(join(root, 'index.html'))) {
      app.log.warn({ root }, 'web page not built: serving a placeholder at / (run npm run build:web)');
      scope.get('/', { schema: HIDDEN }, async (_req, reply) => {
        reply.header('cache-control', 'no-store').type('text/html; charset=utf-8');
        return NOT_BUILT_PAGE;
      });
      return;
    }

    await scope.register(fastifyStatic, {
      root,
      prefix: '/',
      // One route per built file, found at startup: the page never swallows unknown API paths.
      wildcard: false,
      index: ['index.html'],
      preCompressed: true,
      cacheControl: false,
      setHeaders(res, path) {
        const hashed = /[\\/]assets[\\/]/.test(path);
        res.setHeader('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  });
}
