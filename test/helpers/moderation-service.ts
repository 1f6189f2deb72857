/**
 * A moderation service on loopback speaking OpenAI's /v1/moderations wire shape: POST
 * `{input, model?}` answers `{id, model, results: [{flagged, categories, category_scores}]}`.
 * Text containing FORBIDDEN is flagged (category violence). Its behaviour can be switched to the
 * ways a real one fails: never answering, an HTML error page, JSON in another shape, HTTP 500.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ServiceMode = 'normal' | 'hang' | 'garbage' | 'wrong_shape' | 'error_500';

export interface ModerationService {
  /** Full endpoint URL, http://127.0.0.1:<port>/v1/moderations. */
  url: string;
  port: number;
  mode: ServiceMode;
  received: Array<{ body: { input: unknown; model?: string }; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

export async function startModerationService(): Promise<ModerationService> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input: unknown; model?: string };
      svc.received.push({ body, headers: req.headers });
      switch (svc.mode) {
        case 'hang':
          return;
        case 'garbage':
          res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>');
          return;
        case 'wrong_shape':
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ results: [{ flagged: 'maybe' }] }));
          return;
        case 'error_500':
          res
            .writeHead(500, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: { message: 'overloaded' } }));
          return;
        case 'normal': {
          const flagged = String(body.input).includes('FORBIDDEN');
          res.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              id: 'modr-' + svc.received.length,
              model: body.model ?? 'omni-moderation-latest',
              results: [
                {
                  flagged,
                  categories: { violence: flagged, harassment: false },
                  category_scores: { violence: flagged ? 0.97 : 0.01, harassment: 0.002 },
                },
              ],
            }),
          );
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const svc: ModerationService = {
    url: `http://127.0.0.1:${port}/v1/moderations`,
    port,
    mode: 'normal',
    received: [],
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return svc;
}
