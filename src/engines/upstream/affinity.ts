/**
 * Image affinity: a request whose image was seen recently goes to the replica that saw it, so
 * vLLM's multimodal encoder cache and prefix cache hit there instead of the image being encoded
 * again elsewhere. The replica is the one remembered for the fingerprint (recently used, bounded
 * list), else the image's place on a consistent-hash ring (so every glimpse process, and one that
 * restarted, chooses the same replica for a new image). Consistent hashing with bounded loads
 * (Mirrokni, Thorup, Zadimoghaddam, 2018): a replica is taken only while its share of the
 * outstanding requests stays within `loadFactor` times its fair share (by limit) and it is under
 * its limit; otherwise the walk goes on round the ring, so one hot image cannot pin one GPU.
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
  pick(fingerprint: string, candidates: readonly M[]): { member: M; hit: boolean } | undefined {
    const usable = new Set(candidates);
    const total = candidates.reduce((n, m) => n + m.outstanding, 0);
    const limits = candidates.reduce((n, m) => n + m.limit.current, 0);
    const within = (m: M) =>
      m.outstanding < m.limit.current &&
      m.outstanding + 1 <= Math.ceil((this.loadFactor * (total + 1) * m.limit.current) / limits);
    const known = this.seen.get(fingerprint);
    if (known && usable.has(known) && within(known)) return { member: known, hit: true };
    const start = this.firstAtOrAfter(point(fingerprint));
    for (let i = 0; i < this.ring.length; i++) {
      const m = this.ring[(start + i) % this.ring.length]!.member;
      if (usable.has(m) && within(m)) return { member: m, hit: false };
    }
    return undefined;
  }

  /** Remember where an image went (the replica that now holds it in its caches). */
  record(fingerprint: string, member: M): void {
    this.seen.set(fingerprint, member);
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
