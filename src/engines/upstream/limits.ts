/**
 * How many requests one upstream replica should have at once, so that excess load waits in
 * glimpse's queue (where it is ordered, refused or reported) and not in the replica's own
 * (where it is none of those), while the replica is never starved. In order of trust:
 *
 * - configured: `http://gpu1:8000/v1#max=64` or upstreamLimits; never changed.
 * - metrics: learned from the server's own gauges (vLLM's num_requests_running/waiting, SGLang's
 *   num_running_reqs/num_queue_reqs), in glimpse's own terms: how many requests glimpse has
 *   there (running, waiting, and on the wire to or from it). When a queue forms at the server,
 *   the limit becomes what glimpse has there less what waits, plus one: the server runs all it
 *   can and the next request is already there the moment a slot frees (a turnover costs no idle
 *   step), but no more than one waits. While nothing waits there and glimpse keeps it saturated,
 *   the limit grows: doubling until the first queue (slow start, as TCP), then one per reading
 *   in which the server runs everything glimpse has there.
 * - adaptive: for servers that expose nothing (Ollama, llama-server, a cloud API), a
 *   latency-gradient limit as Netflix's concurrency-limits (Gradient2) and Envoy's adaptive
 *   concurrency compute it, on time to first token (what queueing at the server stretches; the
 *   answer's length does not): gradient = clamp(tolerance * long-term / recent, 0.5, 1),
 *   new = limit * gradient + sqrt(limit), smoothed; grown only while the replica is kept busy
 *   (an idle one proves nothing). Refusals (429, 503) cut it by a tenth, as AIMD does.
 */

import { GlimpseError } from '../../core/index.js';

export type LimitSource = 'configured' | 'metrics' | 'adaptive';

export interface LimitOptions {
  /** Limit a replica starts with before anything is learned. */
  initial: number;
  /** Highest limit learning may reach. */
  max: number;
}

/** Gradient2's defaults: the recent latency may be this much over the long-term one before the limit shrinks. */
const TOLERANCE = 1.5;
const SMOOTHING = 0.2;
const LONG_ALPHA = 2 / 101;
const SHORT_ALPHA = 0.5;

export class ReplicaLimit {
  source: LimitSource;
  private value: number;
  /** A queue has formed at the server since start: slow start is over, growth is one at a time from then on. */
  private queueSeen = false;
  private waitedLastReading = false;
  private longTtft = 0;
  private shortTtft = 0;

  constructor(
    configured: number | undefined,
    private readonly opts: LimitOptions,
  ) {
    this.source = configured !== undefined ? 'configured' : 'adaptive';
    this.value = configured ?? Math.min(opts.initial, opts.max);
  }

  /** Requests this replica may have at once now. */
  get current(): number {
    return Math.max(1, Math.floor(this.value));
  }

  /**
   * One reading of the server's gauges. `saturated`: glimpse had as many requests there as the
   * limit allows at some point since the last reading; `outstanding`: how many it has there now
   * (running at the server, waiting there, or on the wire). Returns true when the limit grew.
   */
  fromGauges(running: number, waiting: number, saturated: boolean, outstanding = running + waiting): boolean {
    if (this.source === 'configured') return false;
    this.source = 'metrics';
    const before = this.current;
    // A request can be seen waiting for one scheduler step before it runs, and one waiting is what
    // the limit allows for: only more than one, or one reading after reading, is a queue.
    const queue = waiting > 1 || (waiting > 0 && this.waitedLastReading);
    this.waitedLastReading = waiting > 0;
    if (queue) {
      this.queueSeen = true;
      this.value = Math.max(1, Math.min(this.value, outstanding - waiting + 1));
      return false;
    }
    if (waiting > 0) return false;
    // Only a reading that found the replica pushed to its limit says it could take more; once a
    // queue has been seen, only one where the server runs all glimpse has there (none ready and
    // waiting, none on the wire): the one kept ready is no sign of room.
    if (!saturated && running < this.current) return false;
    if (this.queueSeen && running < Math.min(outstanding, this.current)) return false;
    this.value = Math.min(this.opts.max, this.queueSeen ? this.value + 1 : this.value * 2);
    return this.current > before;
  }

  /** The server's gauges stopped answering: keep the limit reached, go on adaptively. */
  metricsLost(): void {
    if (this.source === 'metrics') this.source = 'adaptive';
  }

  /** The server refused for load (429, 503): back off multiplicatively, whatever taught the limit. */
  refused(): void {
    if (this.source === 'configured') return;
    this.value = Math.max(1, this.value * 0.9);
  }

  /**
   * One answered attempt, for the adaptive limit: its time to first token and how many requests
   * the replica had when it was sent. Returns true when the limit grew.
   */
  sample(ttftMs: number, inflight: number): boolean {
    if (this.source !== 'adaptive' || !(ttftMs > 0)) return false;
    const before = this.current;
    this.shortTtft = this.shortTtft ? this.shortTtft * (1 - SHORT_ALPHA) + ttftMs * SHORT_ALPHA : ttftMs;
    this.longTtft = this.longTtft ? this.longTtft * (1 - LONG_ALPHA) + ttftMs * LONG_ALPHA : ttftMs;
    // Load fell away: let the long-term figure follow down faster, or it would excuse real queueing later.
    if (this.longTtft > 2 * this.shortTtft) this.longTtft *= 0.95;
    // A replica kept at under half its limit shows nothing about what more it could take.
    if (inflight < this.value / 2) return false;
    const gradient = Math.max(0.5, Math.min(1, (TOLERANCE * this.longTtft) / this.shortTtft));
    const next = this.value * gradient + Math.sqrt(this.value);
    this.value = Math.max(1, Math.min(this.opts.max, this.value * (1 - SMOOTHING) + next * SMOOTHING));
    return this.current > before;
  }
}

/** Gauges of the servers glimpse knows, by the names each exposes on /metrics. */
const GAUGES: Array<{ server: 'vllm' | 'sglang'; running: string; waiting: string }> = [
  { server: 'vllm', running: 'vllm:num_requests_running', waiting: 'vllm:num_requests_waiting' },
  { server: 'sglang', running: 'sglang:num_running_reqs', waiting: 'sglang:num_queue_reqs' },
];

export interface ServerGauges {
  server: 'vllm' | 'sglang';
  running: number;
  waiting: number;
}

/**
 * The running and waiting gauges from a Prometheus text exposition, summed over their label sets
 * (vLLM labels them by engine and model); undefined when the text has neither server's.
 */
export function parseServerGauges(text: string): ServerGauges | undefined {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    // name{labels} value [timestamp]; label values may hold spaces, so the value follows the last '}'.
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const name = brace >= 0 && brace < space ? line.slice(0, brace) : line.slice(0, space);
    if (!name.includes(':')) continue;
    const rest = brace >= 0 && brace < space ? line.slice(line.lastIndexOf('}') + 1) : line.slice(space);
    const value = Number(rest.trim().split(/\s+/)[0]);
    if (Number.isFinite(value)) sums.set(name, (sums.get(name) ?? 0) + value);
  }
  for (const g of GAUGES) {
    if (sums.has(g.running) && sums.has(g.waiting))
      return { server: g.server, running: sums.get(g.running)!, waiting: sums.get(g.waiting)! };
  }
  return undefined;
}

/** Where a replica's /metrics is: at the server's root, beside an OpenAI base ending in /v1. */
export function metricsUrl(base: string): string {
  const u = new URL(base);
  u.pathname = u.pathname.replace(/\/+$/, '').replace(/\/v1$/, '') + '/metrics';
  u.hash = '';
  return u.toString();
}

/** A base URL's own limit (`http://gpu1:8000/v1#max=64`), and the URL without it. */
export function splitLimit(url: string): { base: string; max?: number } {
  const hash = url.indexOf('#');
  if (hash < 0) return { base: url };
  const params = new URLSearchParams(url.slice(hash + 1));
  const raw = params.get('max');
  const max = raw === null ? undefined : Number(raw);
  if (raw !== null && !(Number.isInteger(max) && max! >= 1))
    throw new GlimpseError(
      'invalid_request',
      `Upstream '${url}': #max= must be a whole number of requests, 1 or more.`,
    );
  return { base: url.slice(0, hash), ...(max !== undefined ? { max } : {}) };
}
