/**
 * When is a replica about to free a sequence? The answer sizes the one request glimpse sends a
 * replica beyond what it runs (limits.ts: a limit learned from the server's gauges counts what it
 * runs; this is the one more).
 *
 * A server that batches continuously (vLLM, SGLang) admits waiting requests only between decoding
 * steps. A request sent when a sequence ends arrives during the next step and waits it out, so a
 * replica given only what it runs leaves a slot idle for about a step at every turnover (measured
 * with bench/pool: 7.45 of 8 running, 0.94x nginx's throughput). One request kept waiting there
 * closes that gap, but it waits until some sequence ends, and when the running sequences started
 * together (they do: every turnover refills the batch at once) that is the whole length of an
 * answer; the unlucky request kept ready pays it on top of its wait in glimpse's queue, which was
 * the tail of bench/pool's text run (from admission to the first token p90 218 ms, p99 365 ms).
 *
 * So the one more is sent only while a sequence there is likely to end within HORIZON steps: one
 * minus the chance that none of the replica's answers ends within HORIZON more tokens, estimated
 * from the lengths of the pool's recent answers (the chance an answer that has reached g tokens
 * ends by g + HORIZON) and from each request's own max_tokens, at least one half. Answers of
 * lengths that vary a lot (most chat) end often enough that the one more is nearly always there;
 * answers of one length get it only as their end nears. Until answers have been seen, it is
 * always there.
 */

/**
 * Decoding steps ahead. The one sent ahead arrives within a step; it may wait this long for a
 * slot, with even odds. Not having it costs a slot about a step at each turnover, which matters
 * in proportion to how short answers are; having it costs its wait, which grows with how long they
 * are. A fixed number of steps suits both: short answers end often enough to keep it sent nearly
 * always (answers of 4 to 60 tokens on 8 slots: even odds within about 3 steps), long ones seldom,
 * where an idle step is a small part of an answer.
 */
export const HORIZON = 8;
/** Answers whose lengths are kept. */
const WINDOW = 256;
/** The table is rebuilt after this many new answers. */
const REBUILD_EVERY = 16;
/** −ln(1 − p) stands for "sure" from p = 1 − e^−30 on, so weights stay finite and add up. */
const SURE = 30;
/** The odds, as −ln(chance none ends), from which a sequence is taken to end soon: chance ≥ 1/2. */
export const SOON = Math.LN2;

/** Recent answer lengths (decoding steps streamed) and, from them, how soon an answer ends. */
export class AnswerLengths {
  private readonly lengths = new Uint32Array(WINDOW);
  private count = 0;
  private next = 0;
  private fresh = 0;
  /** weights[g]: −ln P(an answer at g tokens does not end within HORIZON more). */
  private weights: Float64Array | undefined;

  get known(): boolean {
    return this.count > 0;
  }

  record(steps: number): void {
    this.lengths[this.next] = steps;
    this.next = (this.next + 1) % WINDOW;
    this.count = Math.min(WINDOW, this.count + 1);
    // Rebuilt from every new answer while there are few, then every REBUILD_EVERY.
    if (++this.fresh >= REBUILD_EVERY || this.count <= REBUILD_EVERY) this.weights = undefined;
  }

  /** The weight of an answer at `steps` tokens so far: 0 (will not end soon) to SURE. */
  weight(steps: number, maxTokens?: number): number {
    if (maxTokens !== undefined && steps + HORIZON >= maxTokens) return SURE;
    const w = this.weights ?? this.rebuild();
    // Longer than any answer seen: overdue, so likely near its end.
    return steps < w.length ? w[steps]! : SURE;
  }

  private rebuild(): Float64Array {
    this.fresh = 0;
    const sorted = this.lengths.slice(0, this.count).sort();
    const longest = sorted[sorted.length - 1] ?? 0;
    const w = new Float64Array(longest);
    // For each g, survivors (length > g) and those of them ending by g + HORIZON, walking the sorted list.
    let atOrBelow = 0;
    let byHorizon = 0;
    for (let g = 0; g < longest; g++) {
      while (atOrBelow < sorted.length && sorted[atOrBelow]! <= g) atOrBelow++;
      while (byHorizon < sorted.length && sorted[byHorizon]! <= g + HORIZON) byHorizon++;
      const alive = sorted.length - atOrBelow;
      const ending = byHorizon - atOrBelow;
      w[g] = ending === 0 ? 0 : ending >= alive ? SURE : Math.min(SURE, -Math.log(1 - ending / alive));
    }
    this.weights = w;
    return w;
  }
}
