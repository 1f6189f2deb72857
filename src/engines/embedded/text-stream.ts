/**
 * Turning token ids into streamed text, and cutting that text at stop strings.
 */

/**
 * Incremental detokenizer: decodes a small window of recent tokens instead of the whole
 * sequence each step, and holds text back while it ends in an incomplete UTF-8 sequence
 * (decoded as U+FFFD) so a multi-byte character is never split across two events.
 */
export class IncrementalDecoder {
  private ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;

  constructor(private readonly decode: (ids: number[]) => string) {}

  /** Add one token; returns the new text it completes ('' when it completes none yet). */
  push(id: number): string {
    this.ids.push(id);
    return this.take();
  }

  /** Add one token without decoding yet (take() decodes everything added since, in one go). */
  add(id: number): void {
    this.ids.push(id);
  }

  /** The new text completed by the tokens added since the last take ('' when none yet). */
  take(): string {
    if (this.readOffset === this.ids.length) return '';
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith('\uFFFD')) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return full.slice(prefix.length);
    }
    return '';
  }

  /** Whatever is still held back at the end of generation (a dangling partial character included). */
  flush(): string {
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.length > prefix.length ? full.slice(prefix.length) : '';
  }
}

/**
 * Stop strings, OpenAI semantics: the output ends just before the first stop string and never
 * contains it, even when it arrives split across several tokens. Text that might be the start
 * of a stop string is held back until it is known not to be.
 */
export class StopMatcher {
  private pending = '';
  stopped = false;

  constructor(private readonly stops: string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** True when there is at least one stop string to look for. */
  get active(): boolean {
    return this.stops.length > 0;
  }

  /** Feed new text; returns the text that is safe to emit now. */
  push(text: string): string {
    if (this.stopped) return '';
    if (!this.stops.length) return text;
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.pending.indexOf(s);
      if (at !== -1 && (cut === -1 || at < cut)) cut = at;
    }
    if (cut !== -1) {
      this.stopped = true;
      const out = this.pending.slice(0, cut);
      this.pending = '';
      return out;
    }
    const hold = this.longestStopPrefixSuffix();
    const out = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return out;
  }

  /** End of generation without a stop: release what was held. */
  flush(): string {
    const out = this.stopped ? '' : this.pending;
    this.pending = '';
    return out;
  }

  private longestStopPrefixSuffix(): number {
    let best = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.pending.length); k > best; k--) {
        if (this.pending.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}

/**
 * Coalesces streamed text in time: a piece goes out at once when the last one left at least
 * `intervalMs` ago (so the first token never waits); pieces arriving sooner wait together until
 * the interval is up. On a slow CPU, where tokens are tens of ms apart, every token still goes out
 * alone; when tokens come faster than anyone reads, the per-piece cost (thread hop, SSE frame,
 * socket write, client parse) is paid once per interval instead of once per token.
 *
 * With a `source`, text is also pulled at flush time: poke() says new material exists (token ids
 * not yet decoded, say) and the work of turning it into text is done once per piece.
 */
export class TextCoalescer {
  private pending = '';
  private last = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;

  private readonly now: () => number;
  private readonly source?: () => string;

  constructor(
    private readonly intervalMs: number,
    private readonly emit: (text: string) => void,
    opts: { source?: () => string; now?: () => number } = {},
  ) {
    this.now = opts.now ?? (() => performance.now());
    this.source = opts.source;
  }

  push(text: string): void {
    if (!text) return;
    this.pending += text;
    this.poke();
  }

  /** New material for `source`: flush now if the interval is up, or when it is. */
  poke(): void {
    if (this.timer) return;
    const wait = this.last + this.intervalMs - this.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  /** Send whatever waits now (end of generation, or the interval is up). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const text = this.pending + (this.source?.() ?? '');
    if (!text) return;
    this.pending = '';
    this.last = this.now();
    this.emit(text);
  }
}
