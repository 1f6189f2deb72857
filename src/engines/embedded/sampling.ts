/**
 * Token choice with a seedable random source. transformers.js samples with Math.random and has
 * no top-p, so glimpse picks the token itself: same seed + same logits => same token, on any
 * machine, because the PRNG and the arithmetic below are plain JavaScript doubles.
 */

/** xoshiro128** seeded through splitmix32: small, fast, good statistical quality. */
export function createRng(seed: number): () => number {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix(),
    b = splitmix(),
    c = splitmix(),
    d = splitmix();
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c = (c ^ t) >>> 0;
    d = rotl(d, 11);
    return result / 4294967296;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export interface SamplingChoice {
  temperature: number;
  topP: number;
  topK?: number;
  minP?: number;
}

export interface Penalties {
  presencePenalty?: number;
  frequencyPenalty?: number;
  repetitionPenalty?: number;
}

/**
 * Adjust logits in place for tokens already seen, before any sampling (greedy too):
 * repetition penalty over prompt and answer (a positive logit divided by it, a negative one
 * multiplied), then OpenAI's presence and frequency penalties over the answer's tokens.
 */
export function applyPenalties(
  logits: Float32Array | Float64Array,
  p: Penalties,
  promptIds: Iterable<number>,
  outputIds: Iterable<number>,
): void {
  const rep = p.repetitionPenalty ?? 1;
  if (rep !== 1) {
    const seen = new Set<number>([...promptIds, ...outputIds]);
    for (const id of seen) {
      if (id < 0 || id >= logits.length) continue;
      const v = logits[id]!;
      logits[id] = v > 0 ? v / rep : v * rep;
    }
  }
  const presence = p.presencePenalty ?? 0;
  const frequency = p.frequencyPenalty ?? 0;
  if (presence !== 0 || frequency !== 0) {
    const counts = new Map<number, number>();
    for (const id of outputIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, n] of counts) {
      if (id < 0 || id >= logits.length) continue;
      logits[id] = logits[id]! - presence - frequency * n;
    }
  }
}

/**
 * Choose one token id from raw logits. temperature 0 (or below 1e-5) is greedy: the highest
 * logit, lowest id on ties. Otherwise softmax(logits / temperature), keep the topK most likely
 * tokens (when set), drop those below minP times the most likely, keep the smallest set whose
 * mass reaches topP, and draw from it with `rng`.
 */
export function chooseToken(logits: ArrayLike<number>, params: SamplingChoice, rng: () => number): number {
  const n = logits.length;
  if (params.temperature < 1e-5) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  const probs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.exp((logits[i]! - max) / params.temperature);
    probs[i] = p;
    sum += p;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => probs[y]! - probs[x]! || x - y);
  const topP = params.topP > 0 && params.topP < 1 ? params.topP : 1;
  const limit = params.topK && params.topK > 0 ? Math.min(params.topK, n) : n;
  // exp(0) = 1 is the most likely token's weight, so minP compares weights directly.
  const floor = params.minP && params.minP > 0 ? params.minP : 0;
  let kept = 0;
  let mass = 0;
  for (const i of order) {
    if (kept >= limit || (kept > 0 && probs[i]! < floor)) break;
    mass += probs[i]! / sum;
    kept++;
    if (mass >= topP) break;
  }
  let r = rng() * mass;
  for (let j = 0; j < kept; j++) {
    const i = order[j]!;
    r -= probs[i]! / sum;
    if (r <= 0) return i;
  }
  return order[kept - 1]!;
}

/** One step's log probabilities: the chosen token's, and the `top` most likely tokens' (descending, lowest id first on ties). */
export interface LogprobRecord {
  id: number;
  logprob: number;
  top: Array<{ id: number; logprob: number }>;
}

/** Log-softmax of the raw logits at the chosen token and at the `top` most likely ones. */
export function logprobRecord(logits: ArrayLike<number>, chosen: number, top: number): LogprobRecord {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  // A running list of the best `top`, kept sorted: top is at most 20, so this is one pass.
  const best: number[] = [];
  if (top > 0) {
    for (let i = 0; i < n; i++) {
      const v = logits[i]!;
      if (best.length === top && v <= logits[best[top - 1]!]!) continue;
      let at = best.length;
      while (at > 0 && logits[best[at - 1]!]! < v) at--;
      best.splice(at, 0, i);
      if (best.length > top) best.pop();
    }
  }
  return { id: chosen, logprob: logits[chosen]! - lse, top: best.map((id) => ({ id, logprob: logits[id]! - lse })) };
}
