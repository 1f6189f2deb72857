import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageSettings, resolveImage, type ResolvedAddress } from '../../src/images/index.js';
import { isGlimpseError } from '../../src/core/index.js';
import { png } from './fixtures.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const skip = hasOpenssl ? false : 'openssl is not installed — skipping the HTTPS fetch tests';

let server: Server;
let port = 0;
let cert = '';
const seen: Array<{ servername: string | false; host: string | undefined }> = [];
const dir = mkdtempSync(join(tmpdir(), 'glimpse-tls-'));

before(async () => {
  if (!hasOpenssl) return;
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=secure.test',
    '-addext',
    'subjectAltName=DNS:secure.test',
  ]);
  assert.equal(made.status, 0, made.stderr.toString());
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const image = await png(12, 12);
  server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
    seen.push({ servername: (req.socket as TLSSocket).servername, host: req.headers.host });
    res.end(image);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

// Test-only: both names resolve to a public-looking address that is dialed as the loopback server.
const resolve = async (name: string): Promise<ResolvedAddress[]> => {
  if (name === 'secure.test' || name === 'other.test') return [{ address: '93.184.216.34', family: 4 }];
  throw new Error('ENOTFOUND');
};
const dialAddress = (): ResolvedAddress => ({ address: '127.0.0.1', family: 4 });
const settings = { images: { ...imageSettings(), fetchTimeoutMs: 3000 } };

test(
  'HTTPS through the pinned connection sends SNI and Host as the name, and checks the certificate against it',
  { skip },
  async () => {
    const img = await resolveImage({ kind: 'url', url: `https://secure.test:${port}/a.png` }, settings, undefined, {
      resolve,
      dialAddress,
      ca: cert,
    });
    assert.equal(img.sourceFormat, 'png');
    assert.deepEqual(seen.at(-1), { servername: 'secure.test', host: `secure.test:${port}` });
  },
);

test(
  'an untrusted certificate, or one for another name, fails the fetch with image_fetch_failed',
  { skip },
  async () => {
    const fails = (p: Promise<unknown>) =>
      assert.rejects(p, (err: unknown) => isGlimpseError(err) && err.code === 'image_fetch_failed');
    await fails(
      resolveImage({ kind: 'url', url: `https://secure.test:${port}/a.png` }, settings, undefined, {
        resolve,
        dialAddress,
      }),
    );
    await fails(
      resolveImage({ kind: 'url', url: `https://other.test:${port}/a.png` }, settings, undefined, {
        resolve,
        dialAddress,
        ca: cert,
      }),
    );
  },
);
