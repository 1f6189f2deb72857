/**
 * One replica of a pool as the pool keeps it, and as /health and /metrics show it.
 */
import type { CircuitBreaker, BreakerState } from './breaker.js';
import type { LimitSource, ReplicaLimit, ServerGauges } from './limits.js';

export interface PoolMember {
  readonly base: string;
  outstanding: number;
  /** Last active check result (undefined before the first). */
  healthy: boolean | undefined;
  lastError?: string;
  readonly breaker: CircuitBreaker;
  readonly limit: ReplicaLimit;
  /** Model ids its /models lists (undefined until it answered one). */
  models?: string[];
  /** The server's own running/waiting gauges at the last reading (undefined: none). */
  gauges?: ServerGauges;
  /** Held at its limit at some point since the last gauge reading. */
  saturated: boolean;
  /** −ln of the chance that none of its answers ends within a few steps (turnover.ts). */
  soon: number;
  routed: number;
  affinityHits: number;
  nextMetricsAt: number;
}

export interface MemberStats {
  base: string;
  /** up, down (failing its check), ejected (breaker open), probing (breaker half-open), unknown (not checked yet). */
  state: 'up' | 'down' | 'ejected' | 'probing' | 'unknown';
  outstanding: number;
  /** What the replica runs, in glimpse's terms (its limit). */
  limit: number;
  /** One request more may be sent now, ahead of a sequence about to end there (a limit learned from its gauges). */
  ahead: boolean;
  limitSource: LimitSource;
  /** The server's own running and waiting requests, when it exposes them. */
  server?: ServerGauges;
  models?: string[];
  routed: number;
  affinityHits: number;
  healthy: boolean | undefined;
  breaker: BreakerState;
  lastError?: string;
}

/** One attempt's part in its member's turnover odds. */
export interface Progress {
  weight: number;
}

/** What /health and /metrics show of a member. */
export function memberStats(m: PoolMember): MemberStats {
  const breaker = m.breaker.current;
  const state =
    breaker === 'open'
      ? 'ejected'
      : breaker === 'half_open'
        ? 'probing'
        : m.healthy === false
          ? 'down'
          : m.healthy === undefined
            ? 'unknown'
            : 'up';
  return {
    base: m.base,
    state,
    outstanding: m.outstanding,
    limit: m.limit.runs,
    ahead: m.limit.current > m.limit.runs,
    limitSource: m.limit.source,
    ...(m.gauges ? { server: m.gauges } : {}),
    ...(m.models ? { models: m.models } : {}),
    routed: m.routed,
    affinityHits: m.affinityHits,
    healthy: m.healthy,
    breaker,
    ...(m.lastError ? { lastError: m.lastError } : {}),
  };
}

/** The model ids of an OpenAI /models answer ({ data: [{ id }] }); undefined when it is not one. */
export function modelIds(text: string): string[] | undefined {
  try {
    const parsed = JSON.parse(text) as { data?: Array<{ id?: unknown }> };
    if (!Array.isArray(parsed.data)) return undefined;
    return parsed.data.map((d) => d.id).filter((id): id is string => typeof id === 'string');
  } catch {
    return undefined;
  }
}
