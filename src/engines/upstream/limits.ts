/**
 * How many requests one upstream replica should have at once, so that excess load waits in
 * glimpse's queue (where it is ordered, refused or reported) and not in the replica's own
 * (where it is none of those), while the replica is never starved. In order of trust:
 *
 * - configured: `http://gpu1:8000/v1#max=64` or upstreamLimits; never changed.
 * - metrics: learned from the server's own gauges (vLLM's num_requests_running/waiting, SGLang's
 *   num_running_reqs/num_queue_reqs), in glimpse's own terms: how many requests glimpse has
 *   there (running, waiting, and on the wire to or from it). When a queue forms at the server,
 *   the limit becomes what glimpse has there less what waits: what the server runs. One more may
 *   be sent ahead while a sequence there is about to end (turnover.ts), so the next request is
 *   already there when a slot frees (a turnover costs no idle step) without waiting long. While
 *   nothing waits there and glimpse keeps it saturated, the limit grows: doubling until the first
 *   queue (slow start, as TCP), then by one per reading in which the server runs everything
 *   glimpse has there, as a probe: judged by the next readings, a probe the server does not run
 *   (a wait while it runs less than the raised limit) is undone at once and doubles the readings
 *   before the next (from FIRST_PROBE_EVERY up to MAX_PROBE_EVERY), one it runs halves them, so a
 *   server that is full is probed every two minutes or so and one with room is climbed quickly.
 *   Below what the server ran when it last had a queue, growth needs no probe: one per reading.
 * - adaptive: for servers that expose nothing (Ollama, llama-server, a cloud API), learned from
 *   each attempt's time to first token (what queueing at the server stretches; the answer's length
 *   does not) against the time of a request that did not wait: the usual first token among those
 *   judged not to have waited (a loaded machine's jitter is in it), never over 1.25 times the
 *   fastest seen lately (so a queue that grows by small steps cannot creep into it). A request
 *   whose first token took over twice that, as did the median of it and the two before it (one
 *   stall is no queue),
 *   waited in the server's own queue: the server could not run the n requests glimpse had there.
 *   If n was the limit, the limit becomes n - 1; one sent below the limit moves nothing (it may be
 *   the machine's stall, and if the server did shrink, those sent at the limit wait too). One that
 *   did not wait although glimpse had the replica at its limit says there may be room: one more
 *   per sample (doubling per round, TCP's slow start) until the first wait, and after it up to
 *   just under where the server was last found full; past that, one more per round of `limit`
 *   samples. Refusals (429, 503) cut it by a tenth, as AIMD does, and end the slow start.
 *
 *   Why not Gradient2 (Netflix's concurrency-limits, the rule here before): its baseline is a long
 *   average of the same latencies it judges, so against a server that keeps its own queue
 *   (OLLAMA_NUM_PARALLEL) the queued latency becomes the baseline within a hundred samples and
 *   the limit climbs to however many clients there are (measured against the Ollama double in
 *   test/pool/adaptive.test.ts: 2 in parallel, limit 16; 4 in parallel, limit 28 with ten
 *   waiting inside it). A fastest time is only set by a request that did not wait, so queueing
 *   cannot teach it; it is kept over a window of samples (two halves, the older dropped) so a
 *   slower model or prompt mix is adopted.
 */

import { GlimpseError } from '../../core/index.js';

export type LimitSource = 'configured' | 'metrics' | 'adaptive';

export interface LimitOptions {
  /** Limit a replica starts with before anything is learned. */
  initial: number;
  /** Highest limit learning may reach. */
  max: number;
}

/** A first token this many times slower than the fastest lately seen waited in the server's queue. */
const TOLERANCE = 2;
/** Samples per half of the window the fastest first token is kept over. */
const WINDOW_HALF = 64;
const NO_WAIT_ALPHA = 0.1;
const NO_WAIT_CAP = 1.25;
/** Readings after a probe within which it is judged. */
const PROBE_SETTLE = 3;
/**
 * Readings between probes past what the server ran with a queue: after the first queue, and at
 * most. A failed probe costs one request a wait of up to an answer, and what a server runs seldom
 * changes (its max-num-seqs, or its KV cache for the prompts it gets), so probes are rare: about
 * every half minute at first, every two once they keep failing, faster while they hold.
 */
export const FIRST_PROBE_EVERY = 30;
const SHORT_QUEUE = 3;
const MAX_PROBE_EVERY = 120;

export class ReplicaLimit {
  source: LimitSource;
  private value: number;
  /** A queue has formed at the server since start: slow start is over, growth is one at a time from then on. */
  private queueSeen = false;
  private waitedLastReading = false;
  /** Readings since the limit last fell to a queue or grew, and how many must pass before a probe. */
  private sinceChange = 0;
  private probeEvery = FIRST_PROBE_EVERY;
  private probing = false;
  /** What the server ran when it last had a queue: its capacity then. Below it, growth needs no probe. */
  private serverFull = 0;
  /** The most the server was seen running, and readings in a row with requests waiting while it ran fewer. */
  private mostRunning = 0;
  private shortWaits = 0;
  /** One more than the limit may be sent now (a metrics limit, a sequence about to end there). */
  private ahead = true;
  /** Fastest first token in the current and the previous half window (Infinity: none yet). */
  private fastest = Infinity;
  private fastestBefore = Infinity;
  private samples = 0;
  /** The last three first tokens. */
  private lastThree: [number, number, number] = [0, 0, 0];
  /** First tokens of the requests that did not wait, smoothed. */
  private noWait = 0;
  /** A sample has waited at the server (or it refused): slow start is over. */
  private waitSeen = false;
  /** How many glimpse had there when a request sent at the limit last waited. */
  private fullAt = 0;

  constructor(
    configured: number | undefined,
    private readonly opts: LimitOptions,
  ) {
    this.source = configured !== undefined ? 'configured' : 'adaptive';
    this.value = configured ?? Math.min(opts.initial, opts.max);
  }

  /** Requests this replica may have at once now: what it runs, and one sent ahead of a turnover. */
  get current(): number {
    return this.runs + (this.ahead && this.source === 'metrics' ? 1 : 0);
  }

  /** What the replica runs, in glimpse's terms. */
  get runs(): number {
    return Math.max(1, Math.floor(this.value));
  }

  /** Whether a sequence there is about to end (turnover.ts). True when the allowance rose. */
  setAhead(on: boolean): boolean {
    const rose = on && !this.ahead && this.source === 'metrics';
    this.ahead = on;
    return rose;
  }

  /**
   * One reading of the server's gauges. `saturated`: glimpse had as many requests there as the
   * limit allows at some point since the last reading; `outstanding`: how many it has there now
   * (running at the server, waiting there, or on the wire). Returns true when the limit grew.
   */
  fromGauges(running: number, waiting: number, saturated: boolean, outstanding = running + waiting): boolean {
    if (this.source === 'configured') return false;
    this.source = 'metrics';
    const before = this.runs;
    // A request can be seen waiting for one scheduler step before it runs (the one sent ahead is
    // such a one): only more than one, or one reading after reading, is a queue.
    // And requests wait for the next step, several of them when a long prefill holds the step,
    // while the server runs fewer than it has run: waiting with the server running less than the
    // most it was seen running is a queue only when seen SHORT_QUEUE readings in a row (then it
    // can run fewer now: a KV cache filled by long prompts, another client).
    this.mostRunning = Math.max(this.mostRunning, running);
    this.shortWaits = waiting > 0 && running < this.mostRunning ? this.shortWaits + 1 : 0;
    const queue =
      (waiting > 1 || (waiting > 0 && this.waitedLastReading)) &&
      (running >= this.mostRunning || this.shortWaits >= SHORT_QUEUE);
    this.waitedLastReading = waiting > 0;
    this.sinceChange++;
    if (this.probing) {
      // A probe is judged by the readings after it: a wait while the server runs less than the
      // raised limit says there was no room (undone at once, and the next probe waits twice as
      // long); the server running it all says there was (the next comes twice as soon).
      if (waiting > 0 && running < this.runs) {
        this.probing = false;
        this.probeEvery = Math.min(MAX_PROBE_EVERY, this.probeEvery * 2);
        this.sinceChange = 0;
        this.value = Math.max(1, this.value - 1);
        return false;
      }
      if (running >= this.runs || this.sinceChange > PROBE_SETTLE) {
        this.probing = false;
        if (running >= this.runs) this.probeEvery = Math.max(1, this.probeEvery / 2);
      }
    }
    if (queue) {
      if (!this.queueSeen) this.probeEvery = FIRST_PROBE_EVERY;
      this.queueSeen = true;
      this.serverFull = running;
      this.sinceChange = 0;
      this.value = Math.max(1, Math.min(this.value, outstanding - waiting));
      return false;
    }
    if (waiting > 0 || this.probing) return false;
    // Only a reading that found the replica pushed to its limit says it could take more; once a
    // queue has been seen, only one where the server runs all glimpse has there up to the limit
    // (the one sent ahead, or one on the wire, is no sign of room), and only as often as probes hold.
    if (!saturated && running < this.runs) return false;
    // In slow start, only a server seen running more than the limit (the one sent ahead too) has
    // shown room to double into. One that runs just what glimpse has there right after a turnover
    // (the one sent ahead has started, the next is not sent yet) may be full: doubling on that
    // sent a full vLLM twice what it runs, and the extra waited there a whole answer.
    if (!this.queueSeen && running <= this.runs) return false;
    if (this.queueSeen) {
      if (running < Math.min(outstanding, this.runs)) return false;
      // Below what the server ran when it last had a queue (a reading taken while requests came and
      // went can set the limit low), growth is back at once; past it, it is a probe, and spaced.
      if (this.runs >= this.serverFull) {
        if (this.sinceChange < this.probeEvery) return false;
        this.probing = true;
        this.sinceChange = 0;
      }
    }
    this.value = Math.min(this.opts.max, this.queueSeen ? this.value + 1 : this.value * 2);
    return this.runs > before;
  }

  /** The server's gauges stopped answering: keep the limit reached, go on adaptively. */
  metricsLost(): void {
    if (this.source === 'metrics') this.source = 'adaptive';
  }

  /** The server refused for load (429, 503): back off multiplicatively, whatever taught the limit. */
  refused(): void {
    if (this.source === 'configured') return;
    // The server says it is full: slow start is over, whichever way it ends.
    this.waitSeen = true;
    this.value = Math.max(1, this.value * 0.9);
  }

  /**
   * One answered attempt, for the adaptive limit: its time to first token and how many requests
   * glimpse had at the replica when it was sent (itself included). Returns true when the limit grew.
   */
  sample(ttftMs: number, sentWith: number): boolean {
    if (this.source !== 'adaptive' || !(ttftMs > 0)) return false;
    const before = this.current;
    if (++this.samples % WINDOW_HALF === 0) {
      this.fastestBefore = this.fastest;
      this.fastest = Infinity;
    }
    // The time of a request that did not wait: the usual one among those judged not to have
    // waited (a loaded machine's jitter is in it, so jitter is not taken for a queue), but never
    // over a quarter again the fastest lately seen (so a queue growing by small steps cannot creep
    // in), nor under it (a server that became slower for good is adopted once the window has passed).
    const fastest = Math.min(this.fastest, this.fastestBefore);
    const baseline = Math.max(fastest, Math.min(this.noWait || fastest, NO_WAIT_CAP * fastest));
    this.fastest = Math.min(this.fastest, ttftMs);
    // Judged with the two before it (their median), so one stall of the machine (a GC pause) is not a queue.
    this.lastThree = [this.lastThree[1], this.lastThree[2], ttftMs];
    const recent = [...this.lastThree].sort((a, b) => a - b)[1]!;
    if (ttftMs > TOLERANCE * baseline) {
      // Slow, but the two before it were not: a stall, which teaches nothing either way.
      if (recent <= TOLERANCE * baseline) return false;
      // It waited: the server could not run the sentWith requests glimpse had there at once.
      // Only one sent at the limit moves it: one sent with fewer is as likely the machine's
      // stall as a queue, and if the server did shrink, those sent at the limit wait too.
      this.waitSeen = true;
      if (sentWith >= this.current) {
        this.fullAt = sentWith;
        this.value = Math.max(1, Math.min(this.value, sentWith - 1));
      }
      return false;
    }
    this.noWait = this.noWait ? this.noWait * (1 - NO_WAIT_ALPHA) + ttftMs * NO_WAIT_ALPHA : ttftMs;
    // Did not wait, but only one sent with the replica at its limit shows it could take more:
    // one more per sample up to just under where it was last found full (or before any wait),
    // then one per round (as TCP's slow start up to its threshold, then congestion avoidance).
    if (sentWith < this.current) return false;
    const fast = !this.waitSeen || this.value + 1 < this.fullAt;
    this.value = Math.min(this.opts.max, this.value + (fast ? 1 : 1 / this.value));
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
