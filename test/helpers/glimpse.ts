/** Start a real glimpse on a free loopback port for a test. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createServer, type Server } from '../../src/server/index.js';
import { createLogger } from '../../src/observability/index.js';

export interface RunningGlimpse extends Server {
  url: string;
  config: Config;
}

export async function startGlimpse(flags: Record<string, unknown>): Promise<RunningGlimpse> {
  // Each instance its own state directory unless the test names one (one instance per directory).
  const stateDir = flags.stateDir === undefined ? mkdtempSync(join(tmpdir(), 'glimpse-state-')) : undefined;
  const config = loadConfig({
    flags: { port: 0, logLevel: process.env.GLIMPSE_TEST_LOG ?? 'silent', ...(stateDir ? { stateDir } : {}), ...flags },
    env: {},
  });
  const server = await createServer(config, { logger: createLogger({ level: config.logLevel, format: 'json' }) });
  await server.engineStarted;
  const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const close = server.close.bind(server);
  return Object.assign(server, {
    url: address,
    config,
    close: async () => {
      await close();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  });
}

/** A 1x1 red PNG as a data URL (a real image; the image pipeline decodes it). */
export const RED_PIXEL_PNG =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
