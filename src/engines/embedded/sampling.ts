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
  let a = splitmix(), b = splitmix(), c = splitmix(), d = splitmix();
  return () => {
    const result = (Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0);
    const t = (b << 9) >>> 0;
    c ^= a; d ^= b; b ^= c; a ^= d;
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
}

/**
 * Choose one token id from raw logits. temperature 0 (or below 1e-5) is greedy: the highest
 * logit, lowest id on ties. Otherwise softmax(logits / temperature), keep the smallest set of
 * most likely tokens whose mass reaches topP, and draw from it with `rng`.
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
  let kept = 0;
  let mass = 0;
  for (const i of order) {
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
