/**
 * The ops stack (deploy/observability, deploy/compose, deploy/k8s/autoscaling): Prometheus' own
 * promtool checks the scrape config and the alert rules and runs their unit tests; every metric the
 * Grafana dashboard, the alert rules and the autoscaler's adapter name is one a live glimpse exports
 * at /metrics; the Kubernetes pieces render with kubectl's kustomize; the compose file runs vLLM
 * with the flags GLM-4.6V-Flash's model card gives and glimpse with settings glimpse accepts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import { configFromEnv, loadConfig } from '../../src/config/index.js';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';
import { hasRedis, startRedis, type RunningRedis } from '../helpers/redis.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const OBS = join(ROOT, 'deploy/observability');
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const run = (cmd: string, args: string[], cwd = ROOT) => spawnSync(cmd, args, { cwd, encoding: 'utf8' });

/** PromQL words that are not metric names: functions, aggregations, keywords. */
const PROMQL_WORDS = new Set(['sum', 'max', 'min', 'avg', 'count', 'by', 'without', 'rate', 'irate', 'increase', 'histogram_quantile', 'or', 'and', 'unless', 'on', 'ignoring', 'le', 'bool', 'topk', 'delta', 'deriv', 'abs', 'clamp_min', 'clamp_max']);

/** Metric names a PromQL expression reads: identifiers not followed by `(`, outside label matchers and strings. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    // A function call, or a letter inside a number (1e3) or a duration.
    if (PROMQL_WORDS.has(word) || /^\s*\(/.test(bare.slice(m.index + word.length)) || /[\d.]$/.test(bare.slice(0, m.index))) continue;
    names.add(word);
  }
  return [...names];
}

/** Families in an exposition text, with the series names each one gives (histograms: _bucket, _sum, _count). */
function exportedSeries(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{| )/.exec(line);
    if (m) out.add(m[1]!);
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) out.add(t[1]!);
  }
  return out;
}

function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(join(OBS, 'grafana/glimpse-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

function alertRules(): Array<{ alert: string; expr: string }> {
  const doc = YAML.parse(readFileSync(join(OBS, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  return doc.groups.flatMap((g) => g.rules);
}

test('metricNames reads the metrics of an expression and nothing else', () => {
  assert.deepEqual(metricNames('histogram_quantile(0.95, sum by (le) (rate(glimpse_x_bucket{status=~"5.."}[5m])))'), ['glimpse_x_bucket']);
  assert.deepEqual(metricNames('up{job="vllm"} == 0 or redis_up == 0'), ['up', 'redis_up']);
  assert.deepEqual(metricNames('sum(a) / sum(b) > 0.8'), ['a', 'b']);
});

describe('Prometheus config and alert rules', { skip: have('promtool') ? false : 'promtool not installed (Debian package prometheus)' }, () => {
  test('promtool check config passes (and with it the rule file it names)', () => {
    const r = run('promtool', ['check', 'config', 'prometheus.yml'], OBS);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 7 rules found/);
  });
  test('promtool check rules passes, and the rules cover queue, TTFT, errors, replicas and Redis', () => {
    const r = run('promtool', ['check', 'rules', 'alerts.yml'], OBS);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const names = alertRules().map((a) => a.alert);
    for (const a of ['GlimpseQueueSaturated', 'GlimpseTtftP95High', 'GlimpseErrorRatioHigh', 'VllmReplicaDown', 'RedisDown']) assert.ok(names.includes(a), a);
  });
  test('promtool test rules: every alert fires on its series and not on healthy ones', () => {
    const r = run('promtool', ['test', 'rules', 'alerts.test.yml'], OBS);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const tested = readFileSync(join(OBS, 'alerts.test.yml'), 'utf8');
    for (const { alert } of alertRules()) assert.match(tested, new RegExp(`alertname: ${alert}\\b`), `${alert} has a unit test`);
  });
});

describe('every metric the dashboard, the alerts and the autoscaler name is exported', { skip: hasRedis ? false : 'redis-server not installed (the jobs metrics need Redis)' }, () => {
  let g: RunningGlimpse;
  let redis: RunningRedis;
  let vllm: FakeVllm;
  let exported: Set<string>;
  before(async () => {
    // As the compose stack runs it: with Redis (the job metrics exist only then), in front of a vLLM
    // server (the per-replica upstream metrics exist only for an upstream pool).
    redis = await startRedis();
    vllm = await startFakeVllm();
    g = await startGlimpse({ engine: 'upstream', upstream: vllm.url, upstreamModel: vllm.model, redisUrl: redis.url });
    // One generation, so the histograms and labelled counters have series.
    const res = await fetch(g.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }) });
    assert.equal(res.status, 200);
    exported = exportedSeries(await (await fetch(g.url + '/metrics')).text());
  });
  after(async () => {
    await g?.close();
    await vllm?.close();
    redis?.stop();
  });

  /** Names that are not glimpse's: Prometheus' own `up`, and redis_exporter's. */
  const OTHERS = new Set(['up', 'redis_up']);

  test('the Grafana dashboard', () => {
    const exprs = dashboardExprs();
    assert.ok(exprs.length >= 10, 'a dashboard worth the name');
    for (const expr of exprs) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `reads a metric: ${expr}`);
      for (const name of names) assert.ok(name.startsWith('glimpse_') && exported.has(name), `${name} (in ${expr}) is exported by glimpse`);
    }
  });

  test('the alert rules', () => {
    for (const { alert, expr } of alertRules()) {
      for (const name of metricNames(expr)) if (!OTHERS.has(name)) assert.ok(exported.has(name), `${alert}: ${name} is exported by glimpse`);
    }
  });

  test('the autoscaler: the adapter rule reads a gauge glimpse exports, and the HPA asks for the name the adapter gives it', () => {
    const adapter = YAML.parse(readFileSync(join(ROOT, 'deploy/k8s/autoscaling/prometheus-adapter.yaml'), 'utf8')) as { data: Record<string, string> };
    const rules = (YAML.parse(adapter.data['config.yaml']!) as { rules: Array<{ seriesQuery: string; name: { as: string } }> }).rules;
    const hpa = YAML.parse(readFileSync(join(ROOT, 'deploy/k8s/autoscaling/hpa.yaml'), 'utf8')) as { spec: { metrics: Array<{ pods: { metric: { name: string } } }>; scaleTargetRef: { name: string } } };
    const wanted = hpa.spec.metrics.map((m) => m.pods.metric.name);
    for (const name of wanted) {
      const rule = rules.find((r) => r.name.as === name);
      assert.ok(rule, `an adapter rule gives ${name}`);
      for (const series of metricNames(rule.seriesQuery)) assert.ok(exported.has(series), `${series} is exported`);
    }
    assert.equal(hpa.spec.scaleTargetRef.name, 'glimpse');
  });
});

describe('Kubernetes manifests render', { skip: have('kubectl') ? false : 'kubectl not installed' }, () => {
  test('autoscaling: an HPA on the glimpse Deployment and the adapter config', () => {
    const r = run('kubectl', ['kustomize', 'deploy/k8s/autoscaling']);
    assert.equal(r.status, 0, r.stderr);
    const kinds = YAML.parseAllDocuments(r.stdout).map((d) => (d.toJS() as { kind: string }).kind);
    assert.deepEqual(kinds.sort(), ['ConfigMap', 'HorizontalPodAutoscaler']);
  });
  test('observability: the dashboard as a ConfigMap Grafana imports, byte for byte the JSON', () => {
    const r = run('kubectl', ['kustomize', 'deploy/observability']);
    assert.equal(r.status, 0, r.stderr);
    const maps = YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as { metadata: { name: string; labels?: Record<string, string> }; data: Record<string, string> });
    const dash = maps.find((m) => m.metadata.name === 'glimpse-grafana-dashboard');
    assert.equal(dash?.metadata.labels?.grafana_dashboard, '1');
    assert.equal(dash?.data['glimpse.json'], readFileSync(join(OBS, 'grafana/glimpse-dashboard.json'), 'utf8'));
    assert.ok(maps.some((m) => m.metadata.name === 'glimpse-prometheus-rules' && m.data['alerts.yml']));
  });
});

test('compose: vLLM with the model card flags on one 24 GB GPU, glimpse in front with settings it accepts, files it mounts exist', () => {
  const file = join(ROOT, 'deploy/compose/compose.yaml');
  const doc = YAML.parse(readFileSync(file, 'utf8')) as { services: Record<string, { command?: string[]; environment?: Record<string, string>; volumes?: string[] }> };
  const vllm = doc.services.vllm!.command!;
  for (const flag of ['--model=zai-org/GLM-4.6V-Flash', '--tool-call-parser=glm45', '--reasoning-parser=glm45', '--enable-auto-tool-choice']) assert.ok(vllm.includes(flag), flag);
  const maxLen = Number(vllm.find((f) => f.startsWith('--max-model-len='))?.split('=')[1]);
  assert.ok(maxLen >= 8192 && maxLen <= 32768, 'a context that fits beside ~20 GB of weights');
  for (const svc of ['glimpse', 'redis', 'prometheus', 'grafana']) assert.ok(doc.services[svc], svc);
  // Compose substitutes ${VAR:-default} / ${VAR:?msg}; take the default (or a sample key) as a user would.
  const env = Object.fromEntries(
    Object.entries(doc.services.glimpse!.environment!).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z_]+:([-?])([^}]*)\}/g, (_m, op: string, rest: string) => (op === '-' ? rest : 'me:sample-secret'))]),
  );
  const config = loadConfig({ env });
  assert.equal(config.engine, 'upstream');
  assert.deepEqual(config.upstream, ['http://vllm:8000/v1']);
  assert.equal(config.upstreamModel, 'zai-org/GLM-4.6V-Flash');
  const set = Object.entries(env).filter(([, v]) => v !== '');
  assert.equal(Object.keys(configFromEnv(env)).length, set.length, 'every GLIMPSE_ variable is a setting');
  for (const svc of Object.values(doc.services)) {
    for (const v of svc.volumes ?? []) {
      const host = v.split(':')[0]!;
      if (host.startsWith('.')) assert.ok(existsSync(resolve(dirname(file), host)), `${host} exists`);
    }
  }
  const prom = YAML.parse(readFileSync(join(OBS, 'prometheus.yml'), 'utf8')) as { scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }> };
  for (const [job, target] of [['glimpse', 'glimpse:8080'], ['vllm', 'vllm:8000'], ['redis', 'redis-exporter:9121']]) {
    assert.deepEqual(prom.scrape_configs.find((s) => s.job_name === job)?.static_configs[0]?.targets, [target], job);
    assert.ok(doc.services[target!.split(':')[0]!], `${target} is a service of the compose file`);
  }
});
