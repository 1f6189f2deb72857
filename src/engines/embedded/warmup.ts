/**
 * Warm-up: one short real generation through the path a request takes (pixels, processor, vision
 * encoder, decoder), so the first real request pays no lazy initialisation.
 */
import { randomInt } from 'node:crypto';
import type { Config } from '../../config/index.js';
import type { GenerateRequest } from '../../core/index.js';
import { toJob, type Job } from './job.js';
import { ModelUnavailableError } from './model-source.js';

/** The warm-up generation as a job for one worker. */
export function warmUpJob(config: Pick<Config, 'maxContextLength' | 'streamIntervalMs'>): Job {
  return toJob(warmUpRequest(), config);
}

/** A small mid-grey image and two greedy tokens: enough to touch every stage, cheap on a CPU. */
function warmUpRequest(): GenerateRequest {
  const rgb = { data: Buffer.alloc(64 * 48 * 3, 128), width: 64, height: 48 };
  return {
    id: `warmup-${randomInt(0, 2 ** 31)}`,
    model: 'warmup',
    messages: [
      {
        role: 'user',
        content: [
          {
            type: 'image',
            source: { kind: 'bytes', data: Buffer.alloc(0) },
            resolved: { rgb, width: 64, height: 48, sourceFormat: 'png', sha256: '' },
          },
          { type: 'text', text: 'Describe this image.' },
        ],
      },
    ],
    sampling: { maxTokens: 2, temperature: 0, topP: 1, stop: [] },
  };
}

/** Reads a warm-up job to its end; an error event becomes a ModelUnavailableError. */
export async function awaitWarmUp(job: Job): Promise<void> {
  for await (const ev of job.events) {
    if (ev.type === 'error') throw new ModelUnavailableError(`The warm-up generation failed: ${ev.error.message}`);
  }
}
