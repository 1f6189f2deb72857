import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  imageSettings,
  resolveImage,
  type ImageSettings,
  type ResolveImageOptions,
  type ResolvedAddress,
} from '../../src/images/index.js';
import { png, rejectsWith } from './fixtures.js';

/** A loopback HTTP server that counts every TCP connection made to it. */
interface CountingServer {
  server: Server;
  port: number;
  connections: number;
  requests: IncomingMessage[];
}

async function countingServer(
  handler: (req: IncomingMessage, res: ServerResponse, self: CountingServer) => void,
): Promise<CountingServer> {
  const self = { connections: 0, requests: [] } as unknown as CountingServer;
  self.server = createServer((req, res) => {
    self.requests.push(req);
    handler(req, res, self);
  });
  self.server.on('connection', () => self.connections++);
  await new Promise<void>((r) => self.server.listen(0, '127.0.0.1', r));
  self.port = (self.server.address() as AddressInfo).port;
  return self;
}

let image: Buffer;
let target: CountingServer; // the server no refused URL may ever reach
let publicHost: CountingServer; // stands in for a public image host (see `asPublic`)
let redirector: CountingServer;

before(async () => {
  image = await png(24, 16);
  target = await countingServer((_req, res) => res.end(image));
  publicHost = await countingServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'image/png' });
      const chunk = Buffer.alloc(64 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < 4 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (req.url === '/big-declared') {
      res.writeHead(200, { 'content-length': String(50 * 1024 * 1024) });
      res.write(Buffer.alloc(1024));
    } else if (req.url === '/slow') {
      res.writeHead(200);
      res.write(image.subarray(0, 10)); // then never finishes
    } else if (req.url === '/missing') {
      res.writeHead(404).end();
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(image); // the header lies; the bytes decide
    }
  });
  redirector = await countingServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const n = Number(u.searchParams.get('n') ?? 0);
    const to = u.searchParams.get('to');
    if (to) return void res.writeHead(302, { location: to }).end();
    if (n > 0) return void res.writeHead(301, { location: `/chain?n=${n - 1}` }).end();
    res.end(image);
  });
});

after(async () => {
  for (const s of [target, publicHost, redirector]) s.server.close();
});

const settings = (over: Partial<ImageSettings> = {}) => ({
  images: { ...imageSettings(), fetchTimeoutMs: 3000, ...over },
});

/** A DNS that knows only the names given. */
function resolver(table: Record<string, string | string[]>, calls: string[] = []) {
  return async (name: string): Promise<ResolvedAddress[]> => {
    calls.push(name);
    const v = table[name];
    if (!v) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return (Array.isArray(v) ? v : [v]).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

// Test-only and explicit: the documentation address 93.184.216.34 stands for a public host; when
// it is dialed, the connection goes to the loopback server on the URL's port instead.
const PUBLIC_IP = '93.184.216.34';
const asPublic: ResolveImageOptions['dialAddress'] = (a) =>
  a.address === PUBLIC_IP ? { address: '127.0.0.1', family: 4 } : a;

const FORBIDDEN: Array<[string, string]> = [
  ['loopback', '127.0.0.1'],
  ['10/8', '10.1.2.3'],
  ['172.16/12', '172.20.0.1'],
  ['192.168/16', '192.168.1.10'],
  ['cloud metadata', '169.254.169.254'],
  ['CGNAT 100.64/10', '100.100.1.1'],
  ['multicast 224/4', '239.1.2.3'],
  ['unspecified', '0.0.0.0'],
  ['IPv6 loopback', '::1'],
  ['IPv6 ULA fc00::/7', 'fd12:3456::1'],
  ['IPv6 link-local', 'fe80::1'],
  ['IPv4-mapped loopback', '::ffff:127.0.0.1'],
  ['IPv4-mapped metadata', '::ffff:169.254.169.254'],
  ['IPv4-compatible loopback', '::127.0.0.1'],
  ['6to4 embedding 10.0.0.1', '2002:a00:1::'],
];

for (const [name, address] of FORBIDDEN) {
  test(`a name resolving to ${name} (${address}) is refused with image_url_forbidden and no connection is made`, async () => {
    const before = target.connections;
    await rejectsWith(
      resolveImage({ kind: 'url', url: `http://images.test:${target.port}/a.png` }, settings(), undefined, {
        resolve: resolver({ 'images.test': address }),
        dialAddress: () => ({ address: '127.0.0.1', family: 4 }),
      }),
      'image_url_forbidden',
    );
    assert.equal(target.connections, before);
  });
}

test('IP-literal URLs for loopback, metadata, [::1] and [::ffff:127.0.0.1] are refused with no connection made', async () => {
  const before = target.connections;
  for (const host of [
    '127.0.0.1',
    '169.254.169.254',
    '[::1]',
    '[::ffff:127.0.0.1]',
    '[::ffff:7f00:1]',
    '0.0.0.0',
    '2130706433',
    '0x7f.1',
  ]) {
    await rejectsWith(
      resolveImage({ kind: 'url', url: `http://${host}:${target.port}/a.png` }, settings()),
      'image_url_forbidden',
    );
  }
  assert.equal(target.connections, before);
});

test('localhost through the system resolver is refused', async () => {
  const before = target.connections;
  await rejectsWith(
    resolveImage({ kind: 'url', url: `http://localhost:${target.port}/a.png` }, settings()),
    'image_url_forbidden',
  );
  assert.equal(target.connections, before);
});

test('one private answer among public ones refuses the whole name, saying what kind of address but not which (no mapping of internal DNS)', async () => {
  await rejectsWith(
    resolveImage({ kind: 'url', url: `http://mixed.test:${target.port}/a.png` }, settings(), undefined, {
      resolve: resolver({ 'mixed.test': [PUBLIC_IP, '10.0.0.7'] }),
      dialAddress: asPublic,
    }),
    'image_url_forbidden',
    /^Image URLs may not point at mixed\.test \(it resolves to a private address\): private addresses are not reachable from glimpse\.$/,
  );
});

test('a public host is fetched, the Host header stays the name, and the content type header is ignored', async () => {
  const img = await resolveImage(
    { kind: 'url', url: `http://cdn.test:${publicHost.port}/a.png` },
    settings(),
    undefined,
    { resolve: resolver({ 'cdn.test': PUBLIC_IP }), dialAddress: asPublic },
  );
  assert.equal(img.sourceFormat, 'png');
  assert.deepEqual([img.width, img.height], [24, 16]);
  assert.equal(publicHost.requests.at(-1)!.headers.host, `cdn.test:${publicHost.port}`);
});

test('a rebinding resolver (public first, loopback after) cannot win: the connection is pinned to the checked answer', async () => {
  const calls: string[] = [];
  let n = 0;
  const rebinding = async (name: string): Promise<ResolvedAddress[]> => {
    calls.push(name);
    return [{ address: n++ === 0 ? PUBLIC_IP : '127.0.0.1', family: 4 }];
  };
  const before = { pub: publicHost.requests.length, target: target.connections };
  const img = await resolveImage(
    { kind: 'url', url: `http://rebind.test:${publicHost.port}/a.png` },
    settings(),
    undefined,
    { resolve: rebinding, dialAddress: asPublic },
  );
  assert.equal(img.sourceFormat, 'png');
  assert.deepEqual(
    calls,
    ['rebind.test'],
    'resolved exactly once; the connection used that answer, not a second lookup',
  );
  assert.equal(publicHost.requests.length, before.pub + 1);
  assert.equal(target.connections, before.target);
});

test('a redirect to a private address is refused and the private server sees no connection', async () => {
  const before = target.connections;
  const opts = { resolve: resolver({ 'cdn.test': PUBLIC_IP, 'internal.test': '10.0.0.5' }), dialAddress: asPublic };
  await rejectsWith(
    resolveImage(
      {
        kind: 'url',
        url: `http://cdn.test:${redirector.port}/r?to=${encodeURIComponent(`http://127.0.0.1:${target.port}/a.png`)}`,
      },
      settings(),
      undefined,
      opts,
    ),
    'image_url_forbidden',
  );
  await rejectsWith(
    resolveImage(
      {
        kind: 'url',
        url: `http://cdn.test:${redirector.port}/r?to=${encodeURIComponent(`http://internal.test:${target.port}/a.png`)}`,
      },
      settings(),
      undefined,
      opts,
    ),
    'image_url_forbidden',
  );
  await rejectsWith(
    resolveImage(
      { kind: 'url', url: `http://cdn.test:${redirector.port}/r?to=${encodeURIComponent('file:///etc/passwd')}` },
      settings(),
      undefined,
      opts,
    ),
    'image_url_forbidden',
  );
  assert.equal(target.connections, before);
});

test('images.maxRedirects: exactly 3 redirects are followed, a 4th is refused', async () => {
  const opts = { resolve: resolver({ 'cdn.test': PUBLIC_IP }), dialAddress: asPublic };
  const ok = await resolveImage(
    { kind: 'url', url: `http://cdn.test:${redirector.port}/chain?n=3` },
    settings(),
    undefined,
    opts,
  );
  assert.equal(ok.sourceFormat, 'png');
  await rejectsWith(
    resolveImage({ kind: 'url', url: `http://cdn.test:${redirector.port}/chain?n=4` }, settings(), undefined, opts),
    'image_fetch_failed',
    /images\.maxRedirects/,
  );
});

test('allowDomains and denyDomains decide before any lookup', async () => {
  const calls: string[] = [];
  const opts = {
    resolve: resolver({ 'img.good.test': PUBLIC_IP, 'other.test': PUBLIC_IP, 'a.evil.test': PUBLIC_IP }, calls),
    dialAddress: asPublic,
  };
  const allow = settings({ allowDomains: ['good.test'] });
  const ok = await resolveImage(
    { kind: 'url', url: `http://img.good.test:${publicHost.port}/a.png` },
    allow,
    undefined,
    opts,
  );
  assert.equal(ok.sourceFormat, 'png');
  await rejectsWith(
    resolveImage({ kind: 'url', url: `http://other.test:${publicHost.port}/a.png` }, allow, undefined, opts),
    'image_url_forbidden',
    /allowDomains/,
  );
  await rejectsWith(
    resolveImage(
      { kind: 'url', url: `http://a.evil.test:${publicHost.port}/a.png` },
      settings({ denyDomains: ['evil.test'] }),
      undefined,
      opts,
    ),
    'image_url_forbidden',
    /denyDomains/,
  );
  assert.deepEqual(calls, ['img.good.test']);
});

test('allowPrivateNetworks lets storage on the LAN through (pinned to the checked address), but never link-local metadata', async () => {
  const lan = settings({ allowPrivateNetworks: true });
  const img = await resolveImage({ kind: 'url', url: `http://storage.lan:${target.port}/a.png` }, lan, undefined, {
    resolve: resolver({ 'storage.lan': '127.0.0.1' }),
  });
  assert.equal(img.sourceFormat, 'png');
  assert.equal(target.requests.at(-1)!.headers.host, `storage.lan:${target.port}`);
  await rejectsWith(
    resolveImage({ kind: 'url', url: 'http://169.254.169.254/latest/meta-data/' }, lan),
    'image_url_forbidden',
  );
});

test('only http and https are fetched; malformed URLs and credentials are refused', async () => {
  for (const url of ['file:///etc/passwd', 'ftp://cdn.test/a.png', 'gopher://cdn.test/', 'javascript:alert(1)']) {
    await rejectsWith(resolveImage({ kind: 'url', url }, settings()), 'image_url_forbidden');
  }
  await rejectsWith(resolveImage({ kind: 'url', url: 'http://' }, settings()), 'invalid_image_url');
  await rejectsWith(resolveImage({ kind: 'url', url: 'not a url' }, settings()), 'invalid_image_url');
  await rejectsWith(
    resolveImage({ kind: 'url', url: `http://u:p@cdn.test:${publicHost.port}/a.png` }, settings()),
    'image_url_forbidden',
  );
});

test('the body is capped while streaming: an endless body stops at images.maxBytes, a declared one is refused from its header', async () => {
  const opts = { resolve: resolver({ 'cdn.test': PUBLIC_IP }), dialAddress: asPublic };
  await rejectsWith(
    resolveImage(
      { kind: 'url', url: `http://cdn.test:${publicHost.port}/big` },
      settings({ maxBytes: 256 * 1024 }),
      undefined,
      opts,
    ),
    'image_too_large',
    /at least \d+ bytes.*images\.maxBytes/,
  );
  await rejectsWith(
    resolveImage({ kind: 'url', url: `http://cdn.test:${publicHost.port}/big-declared` }, settings(), undefined, opts),
    'image_too_large',
    /52428800/,
  );
});

test('a host that stalls hits images.fetchTimeoutMs; HTTP errors and unknown names fail clearly', async () => {
  const opts = { resolve: resolver({ 'cdn.test': PUBLIC_IP }), dialAddress: asPublic };
  await rejectsWith(
    resolveImage(
      { kind: 'url', url: `http://cdn.test:${publicHost.port}/slow` },
      settings({ fetchTimeoutMs: 300 }),
      undefined,
      opts,
    ),
    'image_fetch_failed',
    /300 ms/,
  );
  await rejectsWith(
    resolveImage({ kind: 'url', url: `http://cdn.test:${publicHost.port}/missing` }, settings(), undefined, opts),
    'image_fetch_failed',
    /404/,
  );
  await rejectsWith(
    resolveImage({ kind: 'url', url: `http://nowhere.test/a.png` }, settings(), undefined, opts),
    'image_fetch_failed',
    /resolved/,
  );
});

test('a caller abort stops the fetch', async () => {
  const ac = new AbortController();
  const p = resolveImage({ kind: 'url', url: `http://cdn.test:${publicHost.port}/slow` }, settings(), ac.signal, {
    resolve: resolver({ 'cdn.test': PUBLIC_IP }),
    dialAddress: asPublic,
  });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(p);
});

test('a name with two public addresses still fetches when the first one is dead (every checked address is offered, none other)', async () => {
  const SECOND_PUBLIC = '93.184.216.35';
  // test-only mapping: the first public address goes to a loopback port nobody listens on (IPv6), the second to the image host
  const dial: ResolveImageOptions['dialAddress'] = (a) =>
    a.address === PUBLIC_IP
      ? { address: '::1', family: 6 }
      : a.address === SECOND_PUBLIC
        ? { address: '127.0.0.1', family: 4 }
        : a;
  const img = await resolveImage(
    { kind: 'url', url: `http://two.test:${publicHost.port}/a.png` },
    settings(),
    undefined,
    { resolve: resolver({ 'two.test': [PUBLIC_IP, SECOND_PUBLIC] }), dialAddress: dial },
  );
  assert.equal(img.sourceFormat, 'png');
});
