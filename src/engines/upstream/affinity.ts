/**
 * Image affinity: a request whose image was seen recently goes to the replica that saw it, so
 * vLLM's multimodal encoder cache and prefix cache hit there instead of the image being encoded
 * again elsewhere. The replica is the one remembered for the fingerprint (recently used, bounded
 * list), else the image's place on a consistent-hash ring (so every glimpse process, and one that
 * restarted, chooses the same replica for a new image). Consistent hashing with bounded loads
 * (Mirrokni, Thorup, Zadimoghaddam, 2018): a replica is taken only while its share of the
 * outstanding requests stays within `loadFactor` times its fair share (by limit) and it is under
 * its limit; otherwise the walk goes on round the ring, so one hot image cannot pin one GPU.
 *
 * A request with several images is keyed on all of them, in order (imageAffinityKey), not on its
 * first. vLLM's prefix cache hits on the leading identical blocks, so the first image alone looks
 * like the right key, but it is the wrong one in the case that matters: requests that open with
 * the same logo, letterhead or template page and then differ would all share one key, so they
 * would pile onto one replica (up to the bounded load) while their distinct images were encoded
 * wherever the overflow landed, never twice in the same place. The logo is one image's encoding
 * and prefill; the images after it are the rest. Keyed on the whole list, a repeated set (the same
 * pages, the same comparison) meets its replica every time and hits the prefix cache over all of
 * it, and sets that share only an opening image spread over the ring like any other new images.
 * What a whole-list key alone would lose is the conversation that adds an image in a later turn
 * (turn 1 [A], turn 3 [A, B]): its prefix, the whole earlier conversation, lives where [A] went.
 * So on a miss the key falls back to its earlier prefixes, longest first, but only to those that
 * were a whole request's image list themselves (record() stores only whole lists): [A] was, a
 * shared logo is not unless someone sent it alone.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export interface AffinityMember {
  readonly base: string;
  outstanding: number;
  readonly limit: { readonly current: number };
}

/** Points per replica on the ring: enough that removing one spreads its images evenly over the rest. */
const VIRTUAL_NODES = 64;

const point = (text: string): number => createHash('sha256').update(text).digest().readUInt32BE(0);

/** Fingerprints are hex digests: a space cannot occur in one, so it separates a key's candidates. */
const SEPARATOR = ' ';

/**
 * The affinity key of a request's image fingerprints, in order: the whole list's own key first,
 * then each shorter prefix's, longest first (candidates for a miss, see above), one string so it
 * travels as the pool's opaque image hint. One image: its fingerprint, as before. None: undefined.
 */
export function imageAffinityKey(fingerprints: readonly string[]): string | undefined {
  if (!fingerprints.length) return undefined;
  const keys: string[] = [];
  for (let n = fingerprints.length; n >= 1; n--)
    keys.push(
      n === 1 ? fingerprints[0]! : createHash('sha256').update(fingerprints.slice(0, n).join(',')).digest('hex'),
    );
  return keys.join(SEPARATOR);
}

export class ImageAffinity<M extends AffinityMember> {
  private readonly ring: Array<{ at: number; member: M }>;
  private readonly seen: LRUCache<string, M>;

  constructor(
    members: readonly M[],
    private readonly loadFactor: number,
    entries: number,
  ) {
    this.ring = members
      .flatMap((member) =>
        Array.from({ length: VIRTUAL_NODES }, (_, i) => ({ at: point(`${member.base}#${i}`), member })),
      )
      .sort((a, b) => a.at - b.at);
    this.seen = new LRUCache<string, M>({ max: Math.max(1, entries) });
  }

  /**
   * The replica for an image among `candidates` (those usable now), or undefined when none is
   * within its bounded load (the caller then routes by load). `hit`: it is the replica remembered
   * for this image.
   */
  pick(key: string, candidates: readonly M[]): { member: M; hit: boolean } | undefined {
    const [own, ...prefixes] = key.split(SEPARATOR) as [string, ...string[]];
    const usable = new Set(candidates);
    const total = candidates.reduce((n, m) => n + m.outstanding, 0);
    const limits = candidates.reduce((n, m) => n + m.limit.current, 0);
    const within = (m: M) =>
      m.outstanding < m.limit.current &&
      m.outstanding + 1 <= Math.ceil((this.loadFactor * (total + 1) * m.limit.current) / limits);
    for (const k of [own, ...prefixes]) {
      const known = this.seen.get(k);
      if (known && usable.has(known) && within(known)) return { member: known, hit: true };
    }
    // A new list goes to its own place on the ring, not its first image's: see the top of the file.
    const start = this.firstAtOrAfter(point(own));
    for (let i = 0; i < this.ring.length; i++) {
      const m = this.ring[(start + i) % this.ring.length]!.member;
      if (usable.has(m) && within(m)) return { member: m, hit: false };
    }
    return undefined;
  }

  /**
   * The replica remembered for a key (the whole list, else its recorded prefixes, as pick looks),
   * without counting as a use; undefined if none.
   */
  known(key: string): M | undefined {
    for (const k of key.split(SEPARATOR)) {
      const m = this.seen.peek(k);
      if (m) return m;
    }
    return undefined;
  }

  /** Remember where a request's images went (the replica that now holds them in its caches): the whole list only. */
  record(key: string, member: M): void {
    const space = key.indexOf(SEPARATOR);
    this.seen.set(space < 0 ? key : key.slice(0, space), member);
  }

  private firstAtOrAfter(at: number): number {
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ring[mid]!.at < at) lo = mid + 1;
      else hi = mid;
    }
    return lo % Math.max(1, this.ring.length);
  }
}
