import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

// The page is built from web/ into web/dist, which glimpse serves at `/`.
const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  publicDir: 'public',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline scripts or data-URL modules: the page runs under a strict CSP (script-src 'self').
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: true,
  },
  // `npm run dev:web` serves the page with hot reload and sends API calls to a running glimpse.
  server: {
    host: '127.0.0.1',
    proxy: Object.fromEntries(
      ['/v1', '/health', '/ready', '/ui/config.json'].map((p) => [
        p,
        { target: process.env.GLIMPSE_URL ?? 'http://127.0.0.1:8080', changeOrigin: false },
      ]),
    ),
  },
});
