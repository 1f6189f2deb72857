/**
 * Content moderation (--moderation-url): a wrapper around the generation pipeline, so every API
 * shape (streamed or not, HTTP, WebSocket, async jobs, cache replays) is checked in one place.
 *
 * Before an engine sees a request, its text (every text part of every message) is posted to the
 * moderation service; a flagged request is refused with 400 content_flagged, which each dialect
 * writes in its own error shape. With moderation.answers, the complete answer (and its reasoning)
 * is checked before the stream's end: a flagged one ends with a content_flagged error event instead
 * of finishing. A non-streamed answer is then never shown; a streamed one was already read.
 *
 * It wraps outside PII masking: the service sees a request as its client sent it and an answer as
 * its client gets it. When the service cannot answer, moderation.failMode decides: closed refuses
 * (503 moderation_unavailable), open lets the content through; both are logged and counted.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { GlimpseError, withIterator, type GenerateEvent, type GenerateRequest } from '../core/index.js';
import type { DialTransport } from '../images/index.js';
import type { Logger } from '../observability/index.js';
import { ModerationClient, type FailureReason, type ModerationSettings } from './client.js';

export { ModerationClient, ModerationFailure, parseVerdict, type FailureReason, type Verdict } from './client.js';

export interface ModerationConfig extends Omit<ModerationSettings, 'url'> {
  url?: string;
  answers: boolean;
  failMode: 'open' | 'closed';
}

type Stage = 'request' | 'answer';

/** The pipeline slice moderation wraps: open(req, clientSignal, ...) and the event stream it gives (other members pass through). */
interface OpensStreams {
  open(
    req: GenerateRequest,
    signal: AbortSignal,
    ...rest: never[]
  ): Promise<AsyncIterable<GenerateEvent | QueueEventLike>>;
}

/** The queue's events a pipeline's stream begins with (queued, admitted): passed through as they are. */
type QueueEventLike = { type: 'queued' | 'admitted' };

export interface Moderation {
  /** Wrap a pipeline so its requests (and, if set, its answers) are checked. */
  wrap<P extends OpensStreams>(pipeline: P): P;
  /** Let go of the connections to the service. */
  close(): Promise<void>;
}

/** What a request says in words: every text part, in order. Images are not sent. */
export function requestText(req: GenerateRequest): string {
  return req.messages
    .flatMap((m) => m.content)
    .flatMap((p) => (p.type === 'text' && p.text ? [p.text] : []))
    .join('\n');
}

/** Undefined when no moderation URL is set: nothing to wrap. */
export function createModeration(
  settings: ModerationConfig,
  deps: { logger: Logger; registry?: Registry; transport?: DialTransport },
): Moderation | undefined {
  if (settings.url === undefined) return undefined;
  const client = new ModerationClient({ ...settings, url: settings.url }, deps.transport);
  const registers = deps.registry ? [deps.registry] : [];
  const checks = new Counter({
    name: 'glimpse_moderation_checks_total',
    help: 'Moderation checks made, by stage (request, answer).',
    labelNames: ['stage'],
    registers,
  });
  const flagged = new Counter({
    name: 'glimpse_moderation_flagged_total',
    help: 'Content the moderation service flagged, by stage (request, answer).',
    labelNames: ['stage'],
    registers,
  });
  const failures = new Counter({
    name: 'glimpse_moderation_failures_total',
    help: 'Moderation checks the service gave no verdict for, by stage, reason (timeout, unreachable, forbidden, http_status, bad_response) and outcome: allowed (moderation.failMode open) or refused (closed).',
    labelNames: ['stage', 'reason', 'outcome'],
    registers,
  });
  const seconds = new Histogram({
    name: 'glimpse_moderation_duration_seconds',
    help: 'Time one moderation check took, by stage.',
    labelNames: ['stage'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const outcome = settings.failMode === 'open' ? 'allowed' : 'refused';
  for (const stage of ['request', 'answer'] as const) {
    checks.inc({ stage }, 0);
    flagged.inc({ stage }, 0);
  }

  /** Resolves when the content may go on; throws content_flagged, moderation_unavailable or client_closed. */
  async function gate(stage: Stage, text: string, signal: AbortSignal, reqId: string): Promise<void> {
    const end = seconds.startTimer({ stage });
    checks.inc({ stage });
    let verdict;
    try {
      verdict = await client.check(text, signal);
    } catch (err) {
      if (err instanceof GlimpseError) throw err;
      const reason: FailureReason = (err as { reason?: FailureReason }).reason ?? 'bad_response';
      failures.inc({ stage, reason, outcome });
      deps.logger.warn(
        { reqId, stage, reason, err: (err as Error).message },
        `moderation service gave no verdict: content ${outcome === 'allowed' ? 'let through unchecked (failMode open)' : 'refused (failMode closed)'}`,
      );
      if (outcome === 'allowed') return;
      throw new GlimpseError(
        'moderation_unavailable',
        `The ${stage} could not be checked: the moderation service did not answer usably. Try again shortly.`,
        { retryAfterSeconds: 1 },
      );
    } finally {
      end();
    }
    if (!verdict.flagged) return;
    flagged.inc({ stage });
    deps.logger.info({ reqId, stage, categories: verdict.categories }, 'content flagged by moderation');
    const why = verdict.categories.length ? ` (${verdict.categories.slice(0, 8).join(', ')})` : '';
    throw new GlimpseError(
      'content_flagged',
      stage === 'request'
        ? `The request was flagged by content moderation${why} and was not processed.`
        : `The answer was flagged by content moderation${why} and was stopped.`,
    );
  }

  /** Passes every event on; holds the final done until the whole answer has been checked. */
  async function* checkedAnswer<E extends GenerateEvent | QueueEventLike>(
    events: AsyncIterable<E>,
    signal: AbortSignal,
    reqId: string,
  ): AsyncGenerator<E | GenerateEvent> {
    let text = '';
    for await (const ev of events) {
      if (ev.type === 'token' || ev.type === 'reasoning') text += ev.text;
      if (ev.type !== 'done' || ev.finishReason === 'cancelled' || !text) {
        yield ev;
        continue;
      }
      try {
        await gate('answer', text, signal, reqId);
      } catch (err) {
        const error = err as GlimpseError;
        // Nobody is left to read an error.
        yield error.code === 'client_closed' ? { type: 'done', finishReason: 'cancelled' } : { type: 'error', error };
        continue;
      }
      yield ev;
    }
  }

  return {
    wrap(pipeline) {
      const open = pipeline.open.bind(pipeline);
      const wrapped = Object.create(pipeline) as typeof pipeline;
      wrapped.open = (async (req: GenerateRequest, signal: AbortSignal, ...rest: never[]) => {
        const text = requestText(req);
        if (text) await gate('request', text, signal, req.id);
        const stream = await open(req, signal, ...rest);
        return settings.answers ? withIterator(stream, () => checkedAnswer(stream, signal, req.id)) : stream;
      }) as typeof pipeline.open;
      return wrapped;
    },
    close: () => client.close(),
  };
}
