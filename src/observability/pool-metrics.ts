/**
 * Per-replica metrics of upstream pools, read from the engine at scrape time (structural: the
 * engine is any object with poolStats(), so observability does not import engines/).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface MeteredPoolMember {
  base: string;
  state: string;
  outstanding: number;
  limit: number;
  ahead?: boolean;
  limitSource: string;
  server?: { running: number; waiting: number };
  routed: number;
  affinityHits: number;
}

export interface MeteredPools {
  poolStats(): Array<{ pool: string; members: MeteredPoolMember[] }>;
}

export function hasPools(engine: object): engine is MeteredPools {
  return typeof (engine as { poolStats?: unknown }).poolStats === 'function';
}

export function meterPools(registry: Registry, engine: MeteredPools): void {
  const labelNames = ['pool', 'upstream'] as const;
  const each = (fn: (labels: { pool: string; upstream: string }, m: MeteredPoolMember) => void) => {
    for (const p of engine.poolStats()) for (const m of p.members) fn({ pool: p.pool, upstream: m.base }, m);
  };
  const gauge = (
    name: string,
    help: string,
    read: (m: MeteredPoolMember) => number | undefined,
    extra: string[] = [],
    extraOf: (m: MeteredPoolMember) => Record<string, string> = () => ({}),
  ) =>
    new Gauge({
      name,
      help,
      labelNames: [...labelNames, ...extra],
      registers: [registry],
      collect() {
        this.reset();
        each((labels, m) => {
          const v = read(m);
          if (v !== undefined) this.set({ ...labels, ...extraOf(m) }, v);
        });
      },
    });
  const counter = (name: string, help: string, read: (m: MeteredPoolMember) => number) =>
    new Counter({
      name,
      help,
      labelNames: [...labelNames],
      registers: [registry],
      collect() {
        this.reset();
        each((labels, m) => this.inc(labels, read(m)));
      },
    });
  gauge('glimpse_upstream_in_flight', 'Requests glimpse has at each upstream replica now.', (m) => m.outstanding);
  gauge(
    'glimpse_upstream_limit',
    'Requests each upstream replica may have at once (one more while glimpse_upstream_ahead is 1), by where the limit comes from (configured, metrics, adaptive).',
    (m) => m.limit,
    ['source'],
    (m) => ({ source: m.limitSource }),
  );
  gauge(
    'glimpse_upstream_ahead',
    '1 while one request more than the limit may be sent to the replica, ahead of a sequence about to end there.',
    (m) => (m.ahead ? 1 : 0),
  );
  gauge(
    'glimpse_upstream_up',
    '1 when the replica is routed to (its check passes and its breaker is closed or probing).',
    (m) => (m.state === 'up' || m.state === 'probing' || m.state === 'unknown' ? 1 : 0),
    ['state'],
    (m) => ({ state: m.state }),
  );
  gauge(
    'glimpse_upstream_server_running',
    'Requests the replica reports running (its own /metrics), where it exposes them.',
    (m) => m.server?.running,
  );
  gauge(
    'glimpse_upstream_server_waiting',
    "Requests waiting in the replica's own queue (its own /metrics), where it exposes them: near 0 when limits are right.",
    (m) => m.server?.waiting,
  );
  counter(
    'glimpse_upstream_routed_total',
    'Attempts sent to each upstream replica (retries included).',
    (m) => m.routed,
  );
  counter(
    'glimpse_upstream_affinity_hits_total',
    'Requests sent to the replica that had seen their image.',
    (m) => m.affinityHits,
  );
}
