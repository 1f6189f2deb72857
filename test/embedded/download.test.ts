/**
 * Model download against a loopback hub that serves the fixture's files the way the Hugging Face
 * hub does (/<owner>/<name>/resolve/<revision>/<file>, HEAD, Range), and the unreachable-hub path.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import {
  createEmbeddedEngine,
  modelCacheDir,
  ModelUnavailableError,
  resolveModel,
  type DownloadProgress,
} from '../../src/engines/embedded/index.js';
import { collect, FIXTURE, fixtureConfig, quietLogger, request, askAbout } from './helpers.js';

const MODEL_ID = 'glimpse-test/tiny-vlm';

interface HubLog {
  method: string;
  file: string;
  range?: string;
}

/**
 * Serves FIXTURE as MODEL_ID. `cuts[file] = [n1, n2, ...]`: the first GET of that file breaks off
 * after n1 bytes (a dropped connection), the second after n2, and so on.
 */
function startHub(cuts: Record<string, number[]> = {}): Promise<{ server: Server; url: string; log: HubLog[] }> {
  const log: HubLog[] = [];
  const cut = Object.fromEntries(Object.entries(cuts).map(([k, v]) => [k, [...v]]));
  const server = createServer((req, res) => {
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(decodeURIComponent(req.url ?? ''));
    if (!m || m[1] !== MODEL_ID) {
      res.writeHead(404).end('Repository not found');
      return;
    }
    const file = m[3]!;
    const path = join(FIXTURE, file);
    log.push({ method: req.method!, file, range: req.headers.range });
    if (file.includes('..') || !existsSync(path) || statSync(path).isDirectory()) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    const body = readFileSync(path);
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-length': body.length }).end();
      return;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
    } else res.writeHead(200, { 'content-length': body.length });
    const limit = cut[file]?.shift();
    if (limit !== undefined) {
      res.write(body.subarray(start, start + limit), () => res.destroy());
      return;
    }
    res.end(body.subarray(start));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, log }),
    ),
  );
}

const closeServer = (s: Server) => new Promise<void>((r) => s.close(() => r()));

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'glimpse-dl-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

test('downloads every file the model needs into the cache, reporting bytes, total and rate as it goes', async () => {
  const hub = await startHub();
  const cacheDir = join(tmp, 'full');
  const progress: DownloadProgress[] = [];
  try {
    const model = await resolveModel({
      modelPath: MODEL_ID,
      cacheDir,
      offline: false,
      hubUrl: hub.url,
      revision: 'main',
      dtype: 'auto',
      onProgress: (p) => progress.push(p),
    });
    assert.equal(model.source, 'download');
    assert.equal(model.dir, modelCacheDir(cacheDir, MODEL_ID, 'main'));
    assert.equal(model.dtype, null, "the fixture's own transformers.js_config picks its dtype");
    const fixtureFiles = listFiles(FIXTURE).filter((f) => f !== 'README.md');
    const got = listFiles(model.dir).filter((f) => !f.startsWith('.glimpse-complete'));
    assert.deepEqual(got, fixtureFiles);
    for (const f of fixtureFiles)
      assert.ok(readFileSync(join(model.dir, f)).equals(readFileSync(join(FIXTURE, f))), `${f} is byte-identical`);
    const total = fixtureFiles.reduce((a, f) => a + statSync(join(FIXTURE, f)).size, 0);
    const last = progress.at(-1)!;
    assert.equal(last.done, true);
    assert.equal(last.loaded, total);
    assert.equal(last.total, total);
    for (let i = 1; i < progress.length; i++)
      assert.ok(progress[i]!.loaded >= progress[i - 1]!.loaded, 'bytes only go up');
    assert.ok(progress.some((p) => p.rate > 0));
  } finally {
    await closeServer(hub.server);
  }
});

test('a fresh engine downloads the model from the hub with a live progress bar on a terminal, then serves it', async () => {
  const hub = await startHub();
  const cacheDir = join(tmp, 'fresh-engine');
  const terminal = Object.assign(new PassThrough(), { isTTY: true });
  let drawn = '';
  terminal.on('data', (d: Buffer) => (drawn += d.toString()));
  const engine = createEmbeddedEngine(
    fixtureConfig({ modelPath: MODEL_ID, hubUrl: hub.url, cacheDir, warmup: false }),
    quietLogger,
    { progressStream: terminal },
  );
  try {
    await engine.start();
    assert.equal(engine.health().status, 'healthy', engine.health().reason);
    const frames = drawn.split('\r').filter(Boolean);
    assert.ok(frames.length > 3, 'the bar is redrawn in place as bytes arrive');
    assert.match(frames.at(-1)!, /100%.*done/);
    assert.match(drawn, /MB\/s|KB\/s/);
    const got = await collect(
      engine.generate(request(askAbout([60, 60, 60]), { maxTokens: 2 }), new AbortController().signal),
    );
    assert.equal(got.usage?.completionTokens, 2);
  } finally {
    await engine.close();
    await closeServer(hub.server);
  }
});

test('a transfer that breaks off is retried at once, resuming with a Range request from the bytes already on disk', async () => {
  const cacheDir = join(tmp, 'retry');
  const hub = await startHub({ 'onnx/decoder_model_merged.onnx': [100_000] });
  try {
    const progress: DownloadProgress[] = [];
    const model = await resolveModel({
      modelPath: MODEL_ID,
      cacheDir,
      offline: false,
      hubUrl: hub.url,
      revision: 'main',
      dtype: 'auto',
      retryDelayMs: 10,
      onProgress: (p) => progress.push(p),
    });
    const gets = hub.log.filter((l) => l.method === 'GET' && l.file === 'onnx/decoder_model_merged.onnx');
    assert.equal(gets.length, 2);
    assert.equal(gets[0]!.range, undefined);
    assert.match(gets[1]!.range ?? '', /^bytes=[1-9]\d*-$/);
    assert.ok(
      readFileSync(join(model.dir, 'onnx/decoder_model_merged.onnx')).equals(
        readFileSync(join(FIXTURE, 'onnx/decoder_model_merged.onnx')),
      ),
    );
    assert.equal(progress.at(-1)!.loaded, progress.at(-1)!.total, 'resumed bytes are not counted twice');
  } finally {
    await closeServer(hub.server);
  }
});

test('a download interrupted past its retries resumes on the next start from the .partial file', async () => {
  const cacheDir = join(tmp, 'resume');
  const cutAt = 100_000;
  const hub = await startHub({ 'onnx/decoder_model_merged.onnx': [cutAt, 1000, 1000] });
  try {
    await assert.rejects(
      resolveModel({
        modelPath: MODEL_ID,
        cacheDir,
        offline: false,
        hubUrl: hub.url,
        revision: 'main',
        dtype: 'auto',
        retries: 2,
        retryDelayMs: 10,
      }),
      (err: unknown) => err instanceof ModelUnavailableError && /resume/.test(err.message),
    );
    const dir = modelCacheDir(cacheDir, MODEL_ID, 'main');
    const partial = join(dir, 'onnx', 'decoder_model_merged.onnx.partial');
    // Whatever reached the disk before each break stays (not every sent byte arrives).
    const kept = statSync(partial).size;
    assert.ok(kept > 0 && kept <= cutAt + 2000, `kept ${kept} bytes`);
    assert.equal(existsSync(join(dir, 'onnx', 'decoder_model_merged.onnx')), false);

    hub.log.length = 0;
    const model = await resolveModel({
      modelPath: MODEL_ID,
      cacheDir,
      offline: false,
      hubUrl: hub.url,
      revision: 'main',
      dtype: 'auto',
    });
    const gets = hub.log.filter((l) => l.method === 'GET' && l.file === 'onnx/decoder_model_merged.onnx');
    assert.deepEqual(
      gets.map((g) => g.range),
      [`bytes=${kept}-`],
    );
    assert.ok(
      readFileSync(join(model.dir, 'onnx/decoder_model_merged.onnx')).equals(
        readFileSync(join(FIXTURE, 'onnx/decoder_model_merged.onnx')),
      ),
    );
    assert.equal(existsSync(partial), false);
  } finally {
    await closeServer(hub.server);
  }
});

test('once cached, the model loads and generates offline with no hub at all; uncached offline fails with one sentence', async () => {
  const cacheDir = join(tmp, 'full'); // filled by the first test
  const model = await resolveModel({
    modelPath: MODEL_ID,
    cacheDir,
    offline: true,
    hubUrl: 'http://127.0.0.1:9',
    revision: 'main',
    dtype: 'auto',
  });
  assert.equal(model.source, 'cache');
  const engine = createEmbeddedEngine(
    fixtureConfig({ modelPath: MODEL_ID, cacheDir, offline: true, hubUrl: 'http://127.0.0.1:9', warmup: false }),
    quietLogger,
  );
  await engine.start();
  assert.equal(engine.health().status, 'healthy');
  const got = await collect(
    engine.generate(request(askAbout([9, 9, 9]), { maxTokens: 2 }), new AbortController().signal),
  );
  assert.equal(got.usage?.completionTokens, 2);
  await engine.close();
  await assert.rejects(
    resolveModel({
      modelPath: 'someone/not-cached',
      cacheDir,
      offline: true,
      hubUrl: 'http://127.0.0.1:9',
      revision: 'main',
      dtype: 'auto',
    }),
    (err: unknown) =>
      err instanceof ModelUnavailableError &&
      err.message.includes(join(cacheDir, 'someone', 'not-cached')) &&
      /--offline/.test(err.message),
  );
});

test('a model the hub does not have is reported with the status and what to check', async () => {
  const hub = await startHub();
  try {
    await assert.rejects(
      resolveModel({
        modelPath: 'nobody/missing',
        cacheDir: join(tmp, 'missing'),
        offline: false,
        hubUrl: hub.url,
        revision: 'main',
        dtype: 'auto',
      }),
      (err: unknown) =>
        err instanceof ModelUnavailableError && /HTTP 404/.test(err.message) && /--model-path/.test(err.message),
    );
  } finally {
    await closeServer(hub.server);
  }
});

test('an unreachable hub leaves the engine up but unhealthy, with a one-sentence reason naming the hub, the cache and the fix', async () => {
  // A closed loopback port: refused at once, like a machine with no route to the hub.
  const probe = await startHub();
  const deadUrl = probe.url;
  await closeServer(probe.server);
  const cacheDir = join(tmp, 'unreachable');
  const engine = createEmbeddedEngine(
    fixtureConfig({ modelPath: 'HuggingFaceTB/SmolVLM-256M-Instruct', hubUrl: deadUrl, cacheDir }),
    quietLogger,
    { progressStream: new PassThrough() },
  );
  await engine.start();
  const h = engine.health();
  assert.equal(h.status, 'unhealthy');
  assert.equal(h.ready, false);
  assert.match(h.reason!, /could not be reached/);
  assert.match(h.reason!, /--hub-url https:\/\/hf-mirror\.com/, 'names the mirror users in mainland China can reach');
  assert.ok(h.reason!.includes(deadUrl) && h.reason!.includes(cacheDir) && /--model-path/.test(h.reason!), h.reason);
  assert.equal(h.reason!.split(/\.\s/).length, 1, 'one sentence');
  const got = await collect(engine.generate(request(askAbout([1, 2, 3])), new AbortController().signal));
  assert.equal(got.terminal.type === 'error' && got.terminal.error.code, 'engine_unavailable');
  await engine.close();
});

test('a local directory without config.json is refused with a sentence saying what is missing', async () => {
  await assert.rejects(
    resolveModel({
      modelPath: tmp,
      cacheDir: tmp,
      offline: true,
      hubUrl: 'http://127.0.0.1:9',
      revision: 'main',
      dtype: 'auto',
    }),
    (err: unknown) => err instanceof ModelUnavailableError && /config\.json/.test(err.message),
  );
});
