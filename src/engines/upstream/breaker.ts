/**
 * Circuit breaker for one upstream (passive ejection). Closed: requests flow, consecutive
 * failures are counted. After `threshold` of them it opens: no requests for `cooldownMs`. Then
 * it is half-open: exactly one probe request may go; its success closes the breaker, its failure
 * opens it again for another cooldown.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  threshold: number;
  cooldownMs: number;
  now?: () => number;
}

export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private readonly now: () => number;

  constructor(private readonly opts: BreakerOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** State as of now (an open breaker whose cooldown is over reads as half_open). */
  get current(): BreakerState {
    if (this.state === 'open' && this.now() - this.openedAt >= this.opts.cooldownMs) return 'half_open';
    return this.state;
  }

  /** Could a request go now? No side effects: routing uses this to list candidates. */
  available(): boolean {
    const s = this.current;
    return s === 'closed' || (s === 'half_open' && !this.probing);
  }

  /** Claim the right to send a request: in half-open, the one probe. False if not allowed. */
  tryAcquire(): boolean {
    const s = this.current;
    if (s === 'closed') return true;
    if (s === 'half_open' && !this.probing) {
      this.state = 'half_open';
      this.probing = true;
      return true;
    }
    return false;
  }

  onSuccess(): void {
    this.state = 'closed';
    this.failures = 0;
    this.probing = false;
  }

  onFailure(): void {
    this.failures++;
    if (this.state === 'half_open' || this.current === 'half_open' || this.failures >= this.opts.threshold) {
      this.state = 'open';
      this.openedAt = this.now();
    }
    this.probing = false;
  }

  /** The request ended without a verdict (cancelled by the client): free the probe, count nothing. */
  onNeutral(): void {
    this.probing = false;
  }

  /** Consecutive failures counted so far (for metrics). */
  get consecutiveFailures(): number {
    return this.failures;
  }
}
