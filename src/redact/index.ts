/**
 * PII masking (--redact): a transform over the generation pipeline's event stream, so every API
 * shape (streamed or not, HTTP, WebSocket, async jobs, cache replays) gets answers with ID
 * numbers, bank cards, mobile numbers and e-mail addresses masked. With --redact-prompts the same
 * is masked in the request's text before it reaches an engine (an upstream, a log, the cache key).
 *
 * Streams stay smooth: a piece of text is held back only from where a match could still begin
 * (a trailing run of digits, or a trailing e-mail-like word when e-mails are masked) until the
 * next piece decides it; everything before that goes out at once.
 */
import { Counter, type Registry } from 'prom-client';
import { withIterator, type GenerateEvent, type GenerateRequest } from '../core/index.js';
import { heldFrom, maskText, PII_KINDS, type PiiKind } from './detect.js';

export { PII_KINDS, luhn, maskText, validIdNumber, type PiiKind } from './detect.js';

/** Masks one text stream: push pieces in, get back what may go out now; flush at the end. */
export class StreamMasker {
  private held = '';
  private sent = '';

  constructor(
    private readonly kinds: ReadonlySet<PiiKind>,
    private readonly found?: (kind: PiiKind) => void,
  ) {}

  push(piece: string): string {
    const text = this.held + piece;
    const cut = heldFrom(text, this.kinds, this.sent);
    this.held = text.slice(cut);
    return this.emit(text.slice(0, cut));
  }

  flush(): string {
    const rest = this.held;
    this.held = '';
    return this.emit(rest);
  }

  private emit(text: string): string {
    if (!text) return '';
    // The last character sent goes in front, so a match's left boundary is judged as in one string.
    const masked = maskText(this.sent + text, this.kinds, this.found).slice(this.sent.length);
    this.sent = text.slice(-1);
    return masked;
  }
}

/** `pii` means every kind; otherwise the kinds listed. */
export function redactKinds(list: readonly string[]): Set<PiiKind> {
  return new Set(list.includes('pii') ? PII_KINDS : (list as PiiKind[]));
}

/** Mask the events' text (answer and reasoning); held text goes out before any other event. */
/** The queue's events a pipeline's stream begins with (queued, admitted): passed through as they are. */
type QueueEventLike = { type: 'queued' | 'admitted' };

export function maskEvents<E extends GenerateEvent | QueueEventLike>(
  events: AsyncIterable<E>,
  kinds: ReadonlySet<PiiKind>,
  found?: (kind: PiiKind) => void,
): AsyncIterable<E | GenerateEvent> {
  return {
    async *[Symbol.asyncIterator]() {
      const answer = new StreamMasker(kinds, found);
      const reasoning = new StreamMasker(kinds, found);
      function* flush(): Generator<GenerateEvent> {
        const r = reasoning.flush();
        if (r) yield { type: 'reasoning', text: r };
        const a = answer.flush();
        if (a) yield { type: 'token', text: a };
      }
      for await (const ev of events) {
        if (ev.type === 'token') {
          // Answer text after reasoning: what the reasoning held goes first.
          const r = reasoning.flush();
          if (r) yield { type: 'reasoning', text: r };
          const text = answer.push(ev.text);
          if (text || ev.logprobs) yield { ...ev, text };
        } else if (ev.type === 'reasoning') {
          const text = reasoning.push(ev.text);
          if (text) yield { type: 'reasoning', text };
        } else {
          yield* flush();
          yield ev;
        }
      }
      yield* flush();
    },
  };
}

/** The pipeline slice redaction wraps: open() and the event stream it gives (other members pass through). */
interface OpensStreams {
  open(req: GenerateRequest, ...rest: never[]): Promise<AsyncIterable<GenerateEvent | QueueEventLike>>;
}

export interface Redaction {
  /** Wrap a pipeline so its answers (and, if set, its requests' text) are masked. */
  wrap<P extends OpensStreams>(pipeline: P): P;
}

/** Undefined when --redact is empty: nothing to wrap. */
export function createRedaction(
  settings: { redact: readonly string[]; redactPrompts: boolean },
  registry?: Registry,
): Redaction | undefined {
  if (!settings.redact.length) return undefined;
  const kinds = redactKinds(settings.redact);
  const counter = new Counter({
    name: 'glimpse_redactions_total',
    help: 'Personal data masked (--redact), by kind and where: in answers, or in prompts before an engine saw them.',
    labelNames: ['kind', 'where'],
    registers: registry ? [registry] : [],
  });
  for (const kind of kinds) for (const where of ['answer', 'prompt']) counter.inc({ kind, where }, 0);
  const inAnswers = (kind: PiiKind) => counter.inc({ kind, where: 'answer' });
  const inPrompts = (kind: PiiKind) => counter.inc({ kind, where: 'prompt' });

  function maskPrompt(req: GenerateRequest): void {
    for (const m of req.messages)
      for (const part of m.content) if (part.type === 'text') part.text = maskText(part.text, kinds, inPrompts);
  }

  return {
    wrap(pipeline) {
      const open = pipeline.open.bind(pipeline);
      const wrapped = Object.create(pipeline) as typeof pipeline;
      wrapped.open = (async (req: GenerateRequest, ...rest: never[]) => {
        if (settings.redactPrompts) maskPrompt(req);
        const stream = await open(req, ...rest);
        return withIterator(stream, () => maskEvents(stream, kinds, inAnswers)[Symbol.asyncIterator]());
      }) as typeof pipeline.open;
      return wrapped;
    },
  };
}
