/** Chromium for the tests of the page: where it is, and the one way they start it. */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);

/**
 * Headless, with no background work of its own. How fast Chromium starts is not what any test
 * checks, and on a loaded machine (a fresh 2-core CI runner, a container build in the test beside)
 * its start can pass Playwright's 30 s default; a start that hangs still fails, after 2 minutes.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 120_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}
