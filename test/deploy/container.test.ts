/**
 * The Dockerfile and deploy/k8s, as shipped: the image is built by a real Docker daemon from this
 * checkout and run; the Kubernetes manifests are rendered by kubectl's kustomize and their pod's
 * container is run in that daemon the way a kubelet would run it (user, read-only root, no
 * capabilities, the ConfigMap's environment, the Secret's keys file, emptyDir mounts), then probed
 * with the manifest's own probes and stopped as a rolling update stops a pod.
 *
 * What cannot run here: the official node base image (no registry; a Debian bookworm image with
 * this machine's Node.js stands in, see test/helpers/docker.ts) and a cluster (no API server:
 * scheduling, Services and the PodDisruptionBudget are checked as rendered objects only).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { parseAllDocuments } from 'yaml';
import { configFromEnv, loadConfig } from '../../src/config/index.js';
import { freePort } from '../../bench/util.js';
import { RED_PIXEL_PNG } from '../helpers/glimpse.js';
import { dockerMissing, startDocker, type Docker } from '../helpers/docker.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';

const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const IMAGE = 'glimpse-test/glimpse:latest';
const LABEL = 'glimpse-test=container';
const missing = dockerMissing();

/** GET a URL; the status, or 0 when nothing answers. */
const statusOf = (url: string, headers: Record<string, string> = {}): Promise<number> => fetch(url, { headers, signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0);

async function until(what: string, ms: number, check: () => Promise<boolean>, explain: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what} not within ${ms / 1000} s\n${await explain()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the Docker image and the Kubernetes manifests, in a real Docker daemon', { skip: missing || false, timeout: 20 * 60_000 }, () => {
  let docker: Docker;
  const logsOf = async (name: string) => {
    const r = await docker.run(['logs', '--tail', '40', name]);
    return `container ${name} logs:\n${r.stdout}${r.stderr}`;
  };
  const inspect = async (name: string, format: string) => (await docker.run(['inspect', '--format', format, name])).stdout.trim();

  before(async () => {
    docker = await startDocker();
    const base = await docker.baseImage();
    // The repository's Dockerfile as it is; only the base image is the stand-in.
    await docker.ok(['build', '--network', 'host', '--build-arg', `NODE_IMAGE=${base}`, '-t', IMAGE, ROOT], { timeoutMs: 12 * 60_000 });
  });
  after(async () => {
    if (!docker) return;
    const ids = (await docker.run(['ps', '-aq', '--filter', `label=${LABEL}`])).stdout.split(/\s+/).filter(Boolean);
    if (ids.length) await docker.run(['rm', '-f', '-v', ...ids]);
    // Earlier builds' layers: the daemon's state is kept between runs for its cache, not its garbage.
    await docker.run(['image', 'prune', '-f']);
    await docker.stop();
  });

  test('the image runs as the unprivileged node user and holds the built server, not the toolchain', async (t) => {
    const [config] = JSON.parse(await docker.ok(['image', 'inspect', IMAGE])) as Array<{ Config: { User: string; ExposedPorts: Record<string, unknown>; Env: string[]; Healthcheck?: { Test: string[] }; StopSignal?: string }; Size: number }>;
    t.diagnostic(`image ${(config!.Size / 1e6).toFixed(0)} MB, of which the base ${((JSON.parse(await docker.ok(['image', 'inspect', await docker.baseImage()]))[0].Size as number) / 1e6).toFixed(0)} MB`);
    assert.equal(config!.Config.User, 'node');
    assert.ok('8080/tcp' in config!.Config.ExposedPorts);
    assert.ok(config!.Config.Env.includes('GLIMPSE_HOST=0.0.0.0') && config!.Config.Env.includes('GLIMPSE_PORT=8080'));
    assert.equal(config!.Config.StopSignal, 'SIGTERM');
    assert.ok(config!.Config.Healthcheck?.Test.join(' ').includes('/livez'));
    const listing = await docker.ok(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', IMAGE, '-c', [
      'id -u',
      'echo $(ls /app)',
      'for p in typescript vite tsx playwright-core openai onnxruntime-web sharp @huggingface/transformers fastify; do [ -d node_modules/$p ] && echo "has $p"; done',
      'cd node_modules/onnxruntime-node/bin && echo onnxruntime $(find . -name "*.node") && cd /app',
      'find /app/dist -name "*.ts" -o -name "*.map" | wc -l',
      'test -f web/dist/index.html && echo page',
      'touch /app/x 2>/dev/null && echo app-writable || echo app-read-only',
      'touch /var/cache/glimpse/models/x && echo cache-writable',
    ].join('; ')]);
    const lines = listing.split('\n');
    assert.equal(lines[0], '1000');
    assert.deepEqual(lines[1]!.split(/\s+/).sort(), ['bin', 'dist', 'node_modules', 'package.json', 'web']);
    for (const runtime of ['sharp', '@huggingface/transformers', 'fastify']) assert.ok(lines.includes(`has ${runtime}`), `${runtime} missing:\n${listing}`);
    for (const devOnly of ['typescript', 'vite', 'tsx', 'playwright-core', 'openai', 'onnxruntime-web']) assert.ok(!lines.includes(`has ${devOnly}`), `${devOnly} in the image`);
    // onnxruntime-node ships a native build for every OS and CPU; the image keeps its own only.
    assert.equal(lines.find((l) => l.startsWith('onnxruntime')), `onnxruntime ./napi-v6/linux/${process.arch}/onnxruntime_binding.node`);
    assert.ok(lines.includes('0'), 'no TypeScript sources or source maps');
    assert.ok(lines.includes('page') && lines.includes('app-read-only') && lines.includes('cache-writable'), listing);
  });

  test('without API keys it refuses to listen on 0.0.0.0 and says how to fix it', async () => {
    const r = await docker.run(['run', '--rm', '--label', LABEL, '--network', 'none', IMAGE], { timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /Refusing to bind 0\.0\.0\.0 without API keys.*--api-keys/);
  });

  test('embedded engine on the tiny model: read-only root, no capabilities; API, page and metrics answer; healthy; docker stop exits 0', async () => {
    const port = await freePort();
    const key = randomBytes(12).toString('hex');
    const name = `glimpse-test-embedded-${port}`;
    await docker.ok([
      'run', '-d', '--name', name, '--label', LABEL, '--network', 'host',
      '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '--health-interval', '1s',
      '-e', `GLIMPSE_PORT=${port}`, '-e', `GLIMPSE_API_KEYS=tester:${key}`, '-e', 'GLIMPSE_MODEL_PATH=/models/tiny-vlm', '-e', 'GLIMPSE_OFFLINE=true',
      '-v', `${ROOT}/fixtures/tiny-vlm:/models/tiny-vlm:ro`,
      IMAGE,
    ]);
    const base = `http://127.0.0.1:${port}`;
    await until('/ready 200', 90_000, async () => (await statusOf(base + '/ready')) === 200, () => logsOf(name));

    const client = new OpenAI({ baseURL: base + '/v1', apiKey: key, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'tiny-vlm',
      stream: true,
      max_tokens: 6,
      // Greedy: sampled from the random-weight model, an end token comes within 6 tokens about one time in ten.
      temperature: 0,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: RED_PIXEL_PNG } }, { type: 'text', text: 'What is this?' }] }],
    });
    let text = '';
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(text.length > 0, 'tokens streamed from the model inside the container');
    assert.equal(finish, 'length');
    assert.equal(await statusOf(base + '/v1/models'), 401, 'keys are enforced');
    assert.equal(await statusOf(base + '/'), 200, 'the page');
    const metrics = await fetch(base + '/metrics', { headers: { authorization: `Bearer ${key}` } }).then((r) => r.text());
    assert.match(metrics, /glimpse_http_requests_total\{method="POST",route="\/v1\/chat\/completions",status="200"\} 1/);

    await until('docker health "healthy"', 30_000, async () => (await inspect(name, '{{.State.Health.Status}}')) === 'healthy', () => logsOf(name));
    const stopped = await docker.run(['stop', '-t', '35', name], { timeoutMs: 60_000 });
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(await inspect(name, '{{.State.ExitCode}}'), '0', await logsOf(name));
    const logs = (await docker.run(['logs', name])).stdout.trim().split('\n');
    assert.ok(logs.every((l) => { try { return typeof JSON.parse(l) === 'object'; } catch { return false; } }), 'every log line is JSON');
    assert.ok(logs.some((l) => JSON.parse(l).msg === 'shutting down'));
  });

  describe('deploy/k8s', { skip: spawnSync('kubectl', ['version', '--client']).status === 0 ? false : 'kubectl not installed' }, () => {
    type Obj = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };
    let objects: Obj[];
    const one = (kind: string) => {
      const found = objects.filter((o) => o.kind === kind);
      assert.equal(found.length, 1, `one ${kind}`);
      return found[0]!;
    };
    let vllm: FakeVllm;
    before(async () => {
      const rendered = spawnSync('kubectl', ['kustomize', join(ROOT, 'deploy/k8s')], { encoding: 'utf8' });
      assert.equal(rendered.status, 0, rendered.stderr);
      objects = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Obj);
      vllm = await startFakeVllm({ script: () => ({ content: Array.from({ length: 30 }, (_, i) => ` w${i}`), delayMs: 100, finishReason: 'stop' }) });
    });
    after(async () => vllm?.close());

    test('the objects fit together: config, selectors, ports, probes and the grace period', () => {
      const deployment = one('Deployment');
      const pod = deployment.spec.template;
      const [container] = pod.spec.containers;
      const configMap = one('ConfigMap');
      assert.equal(container.envFrom[0].configMapRef.name, configMap.metadata.name, 'the pod reads the generated ConfigMap');
      for (const kind of ['Service', 'PodDisruptionBudget']) {
        const selector = kind === 'Service' ? one(kind).spec.selector : one(kind).spec.selector.matchLabels;
        assert.ok(Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => pod.metadata.labels[k] === v), `${kind} selects the pods`);
      }
      assert.deepEqual(deployment.spec.selector.matchLabels, one('Service').spec.selector);
      const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
      assert.equal(container.image, `glimpse:${version}`, 'the image tag is the release the manifests go with');
      const http = container.ports.find((p: { name: string }) => p.name === one('Service').spec.ports[0].targetPort);
      assert.ok(http, 'the Service targets a named container port');
      // The port the image listens on (GLIMPSE_PORT=8080 in the Dockerfile) is the one the manifests name.
      assert.equal(http.containerPort, 8080);
      assert.equal(Number(pod.metadata.annotations['prometheus.io/port']), http.containerPort);
      for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) assert.equal(container[probe].httpGet.port, 'http');
      assert.equal(container.readinessProbe.httpGet.path, '/ready', 'traffic follows /ready, which turns 503 on SIGTERM');
      assert.equal(container.livenessProbe.httpGet.path, '/livez', 'liveness is the process, not the GPU pool (a vLLM restart must not restart every glimpse)');

      // Every variable is a glimpse setting, and together they load.
      const env: Record<string, string> = { ...configMap.data, ...Object.fromEntries(container.env.map((e: { name: string; value: string }) => [e.name, e.value])) };
      for (const name of Object.keys(env)) assert.equal(Object.keys(configFromEnv({ [name]: env[name] })).length, 1, `${name} is not a glimpse setting`);
      const config = loadConfig({ env });
      assert.equal(config.engine, 'upstream');
      const preStop = Number(container.lifecycle.preStop.exec.command.at(-1));
      assert.ok(pod.spec.terminationGracePeriodSeconds >= preStop + config.graceShutdownSeconds + 5, 'SIGKILL comes after preStop and the graceful drain');
      assert.equal(pod.spec.securityContext.runAsUser, 1000, "the image's node user");
      assert.ok(container.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/tmp'), 'a writable /tmp under a read-only root');
    });

    test("the pod's container, run as a kubelet would: probes pass, requests reach the GPU pool, a Secret update rotates the key, a rolling update drains it", async () => {
      const deployment = one('Deployment');
      const pod = deployment.spec.template;
      const [container] = pod.spec.containers;
      const configMap = one('ConfigMap');
      const port = await freePort();
      const name = `glimpse-test-k8s-${port}`;
      const key = randomBytes(12).toString('hex');
      // The Secret volume, laid out as the kubelet writes it: keys -> ..data/keys, and an update
      // swaps the ..data link to a new folder in one rename.
      const keysDir = mkdtempSync(join(tmpdir(), 'glimpse-k8s-keys-'));
      chmodSync(keysDir, 0o755);
      const publishKeys = (version: string, text: string) => {
        mkdirSync(join(keysDir, version), { mode: 0o755 });
        writeFileSync(join(keysDir, version, 'keys'), text, { mode: 0o644 });
        symlinkSync(version, join(keysDir, '..data_tmp'));
        renameSync(join(keysDir, '..data_tmp'), join(keysDir, '..data'));
      };
      publishKeys('v1', `tester:${key}\n`);
      symlinkSync('..data/keys', join(keysDir, 'keys'));
      const keysMount = container.volumeMounts.find((m: { name: string }) => pod.spec.volumes.find((v: { name: string; secret?: unknown }) => v.name === m.name)?.secret);
      const env: Record<string, string> = {
        ...configMap.data,
        ...Object.fromEntries(container.env.map((e: { name: string; value: string }) => [e.name, e.value])),
        // What differs on this host: the GPU pool is the vLLM double, and the host network has
        // no port 8080 to spare (the containerPort stands for this free one).
        GLIMPSE_UPSTREAM: vllm.url,
        GLIMPSE_PORT: String(port),
      };
      const sc = { ...pod.spec.securityContext, ...container.securityContext };
      const emptyDirs = container.volumeMounts.filter((m: { name: string }) => pod.spec.volumes.find((v: { name: string; emptyDir?: unknown }) => v.name === m.name)?.emptyDir);
      await docker.ok([
        'run', '-d', '--name', name, '--label', LABEL, '--network', 'host',
        '--user', `${sc.runAsUser}:${sc.runAsGroup}`, '--group-add', String(sc.fsGroup),
        ...(sc.readOnlyRootFilesystem ? ['--read-only'] : []),
        ...(sc.capabilities?.drop?.includes('ALL') ? ['--cap-drop', 'ALL'] : []),
        ...(sc.allowPrivilegeEscalation === false ? ['--security-opt', 'no-new-privileges'] : []),
        ...emptyDirs.flatMap((m: { mountPath: string }) => ['--tmpfs', `${m.mountPath}:uid=${sc.runAsUser},gid=${sc.fsGroup}`]),
        '-v', `${keysDir}:${keysMount.mountPath}:ro`,
        ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
        IMAGE, ...container.args,
      ]);
      const url = (path: string) => `http://127.0.0.1:${port}${path}`;
      // Kubelet order: the startup probe until it passes, then readiness and liveness.
      const startup = container.startupProbe;
      await until('startup probe', startup.periodSeconds * startup.failureThreshold * 1000, async () => (await statusOf(url(startup.httpGet.path))) === 200, () => logsOf(name));
      await until('readiness probe', 30_000, async () => (await statusOf(url(container.readinessProbe.httpGet.path))) === 200, () => logsOf(name));
      assert.equal(await statusOf(url(container.livenessProbe.httpGet.path)), 200);
      assert.equal((await docker.ok(['exec', name, 'sh', '-c', `command -v ${container.lifecycle.preStop.exec.command[0]}`])).length > 0, true, 'the preStop command exists in the image');

      // A request through the pod to the pool; the served name and the upstream's model are the ConfigMap's.
      const client = new OpenAI({ baseURL: url('/v1'), apiKey: key, maxRetries: 0 });
      const served = (await client.models.list()).data.map((m) => m.id);
      assert.ok(served.includes(env.GLIMPSE_MODEL_NAME!), `serves ${served.join(', ')}`);

      // Key rotation: an updated Secret applies within the reload interval, with no restart.
      const rotated = randomBytes(12).toString('hex');
      publishKeys('v2', `tester:${rotated}\n`);
      const withKey = (k: string) => statusOf(url('/v1/models'), { authorization: `Bearer ${k}` });
      await until('the rotated key', (loadConfig({ env }).apiKeysReloadSeconds + 10) * 1000, async () => (await withKey(rotated)) === 200, () => logsOf(name));
      assert.equal(await withKey(key), 401, 'the replaced key is refused');
      client.apiKey = rotated;
      const stream = await client.chat.completions.create({
        model: env.GLIMPSE_MODEL_NAME!,
        stream: true,
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: RED_PIXEL_PNG } }, { type: 'text', text: 'What is this?' }] }],
      });
      // Rolling update: SIGTERM while the answer (3 s) streams. Readiness fails at once so the
      // Service stops sending; the answer in flight still completes; the process exits 0.
      let text = '';
      let finish: string | null | undefined;
      let signalled = false;
      let readyDuringDrain = -1;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (!signalled && text.length > 0) {
          signalled = true;
          await docker.ok(['kill', '--signal', 'SIGTERM', name]);
          await new Promise((r) => setTimeout(r, 300));
          readyDuringDrain = await statusOf(url(container.readinessProbe.httpGet.path));
        }
      }
      // (The pool also gets glimpse's health checks, GET /models.)
      assert.equal(vllm.lastChatBody()?.model, env.GLIMPSE_UPSTREAM_MODEL);
      assert.equal(readyDuringDrain, 503, 'not ready while draining');
      assert.equal(text, Array.from({ length: 30 }, (_, i) => ` w${i}`).join(''), 'the answer in flight finished whole');
      assert.equal(finish, 'stop');
      await until('the container to exit', (pod.spec.terminationGracePeriodSeconds as number) * 1000, async () => (await inspect(name, '{{.State.Running}}')) === 'false', () => logsOf(name));
      assert.equal(await inspect(name, '{{.State.ExitCode}}'), '0', await logsOf(name));
    });
  });
});
