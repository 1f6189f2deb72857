/**
 * One generation as the engine tracks it: the message for the worker (with the image buffers it
 * transfers), the channel its events go out on, and how it ended.
 */
import { randomInt } from 'node:crypto';
import type { Config } from '../../config/index.js';
import { GlimpseError, templateVariables, type GenerateEvent, type GenerateRequest } from '../../core/index.js';
import { EventChannel, mergeTokens } from './channel.js';
import type { WorkerGenerate, WorkerImage, WorkerPart } from './protocol.js';

export interface Job {
  msg: WorkerGenerate;
  transfer: ArrayBuffer[];
  events: EventChannel<GenerateEvent>;
  /** Index of the worker running it; null before it starts. */
  worker: number | null;
  /** Whether the engine asked the worker to stop (the caller let go: client gone, or the pipeline's deadline). */
  stopped: boolean;
  finished: boolean;
  /** When a worker took it (for the log line at its end). */
  startedAt: number;
}

/** The request in the worker's terms; throws GlimpseError for a request the engine cannot take. */
export function toJob(req: GenerateRequest, config: Pick<Config, 'maxContextLength' | 'streamIntervalMs'>): Job {
  if (!req.messages.length)
    throw new GlimpseError('empty_messages', 'The request has no messages.', { param: 'messages' });
  const images: WorkerImage[] = [];
  const transfer: ArrayBuffer[] = [];
  // Copy into a buffer of its own: Node's small Buffers share a pooled ArrayBuffer that must not be transferred.
  const own = (d: Buffer): ArrayBuffer => {
    const b = d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength) as ArrayBuffer;
    transfer.push(b);
    return b;
  };
  const messages = req.messages.map((m) => ({
    role: m.role,
    content: m.content.map((p): WorkerPart => {
      if (p.type === 'text') return { type: 'text', text: p.text };
      // The pipeline turns documents into pages and videos into frames for engines that take pixels.
      if (p.type !== 'image')
        throw new GlimpseError(
          'internal_error',
          `A ${p.type} part reached the embedded engine; it takes pages and frames as images.`,
        );
      if (!p.resolved)
        throw new GlimpseError('internal_error', 'An image reached the engine before the image pipeline resolved it.');
      const { rgb, data } = p.resolved;
      // Decoded pixels when the pipeline has them (the normal path); encoded bytes are decoded in the worker.
      if (rgb) images.push({ rgb: own(rgb.data), width: rgb.width, height: rgb.height });
      else if (data) images.push({ encoded: own(data) });
      else
        throw new GlimpseError('internal_error', 'A resolved image reached the engine with neither pixels nor bytes.');
      return { type: 'image', index: images.length - 1 };
    }),
  }));
  const s = req.sampling;
  return {
    msg: {
      type: 'generate',
      id: req.id,
      messages,
      images,
      // The model's template reads these as variables (a template without them ignores them).
      templateArgs: templateVariables(req),
      maxTokens: s.maxTokens,
      temperature: s.temperature,
      topP: s.topP,
      ...(req.logprobs ? { logprobs: req.logprobs.top } : {}),
      extra: {
        topK: s.topK,
        minP: s.minP,
        presencePenalty: s.presencePenalty,
        frequencyPenalty: s.frequencyPenalty,
        repetitionPenalty: s.repetitionPenalty,
      },
      seed: s.seed ?? randomInt(0, 2 ** 31),
      stop: s.stop,
      maxContextLength: config.maxContextLength,
      streamIntervalMs: config.streamIntervalMs,
    },
    transfer,
    events: new EventChannel<GenerateEvent>(mergeTokens),
    worker: null,
    stopped: false,
    finished: false,
    startedAt: 0,
  };
}

/** End a job with its one terminal event; later calls do nothing. */
export function finish(job: Job, terminal: GenerateEvent): void {
  if (job.finished) return;
  job.finished = true;
  job.events.push(terminal);
  job.events.close();
}
