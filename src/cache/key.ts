/**
 * Cache keys. A key is a hash over everything that decides an answer: model, every message's
 * text, every image's pixel fingerprint, the sampling params, thinking, chat template variables, and the caller's key id
 * (so one API key never gets another's cached answer).
 */
import { createHash } from 'node:crypto';
import { hasToolTurns, type ContentPart, type GenerateRequest } from '../core/index.js';

/** Sampling that gives the same answer every time: greedy, or seeded. */
export function isDeterministic(req: GenerateRequest): boolean {
  return req.sampling.temperature === 0 || req.sampling.seed !== undefined;
}

/**
 * Tool-calling turns are not cached: their answers act on the world (the client runs the call),
 * and a conversation with tool results is a live exchange, not a question asked twice.
 */
export function isCacheable(req: GenerateRequest): boolean {
  // A cached answer keeps its text, not its token probabilities.
  if (req.logprobs) return false;
  return !req.toolOptions?.tools?.length && !hasToolTurns(req.messages);
}

const hash = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex');

function describe(req: GenerateRequest, imagesAs: 'sha256' | 'slot') {
  const s = req.sampling;
  return {
    v: 3,
    model: req.model,
    key: req.keyId ?? null,
    // Unset is the model's default (GLM thinks), which is not the same answer as thinking turned off.
    thinking: req.thinking ?? null,
    template: req.templateArgs ?? null,
    format: req.toolOptions?.responseFormat ?? null,
    sampling: {
      maxTokens: s.maxTokens,
      temperature: s.temperature,
      topP: s.topP,
      seed: s.seed ?? null,
      stop: s.stop,
      topK: s.topK ?? null,
      minP: s.minP ?? null,
      presence: s.presencePenalty ?? null,
      frequency: s.frequencyPenalty ?? null,
      repetition: s.repetitionPenalty ?? null,
    },
    messages: req.messages.map((m) => ({
      role: m.role,
      content: m.content.map((p) =>
        p.type === 'text'
          ? { t: p.text }
          : { [p.type === 'video' ? 'v' : 'i']: imagesAs === 'sha256' ? mediaFingerprint(p) : '*' },
      ),
    })),
  };
}

/** A resolved image's or video's fingerprint (documents are pages by the time a key is made). */
function mediaFingerprint(p: Exclude<ContentPart, { type: 'text' }>): string {
  return p.type === 'document' ? '' : p.resolved!.sha256;
}

function images(req: GenerateRequest) {
  return req.messages.flatMap((m) => m.content).filter((p) => p.type === 'image');
}

/** The exact key, or null when an image has not been resolved (no fingerprint to key on). */
export function exactKey(req: GenerateRequest): string | null {
  if (images(req).some((p) => p.type === 'image' && !p.resolved)) return null;
  return 'a:' + hash(describe(req, 'sha256'));
}

/**
 * For near-duplicate reuse: the key of everything but the images, plus each image's perceptual
 * hash in order. Null when there are no images or one lacks a perceptual hash.
 */
export function nearKey(req: GenerateRequest): { template: string; phashes: string[] } | null {
  const parts = images(req);
  if (!parts.length) return null;
  const phashes: string[] = [];
  for (const p of parts) {
    if (p.type !== 'image' || !p.resolved?.phash) return null;
    phashes.push(p.resolved.phash);
  }
  return { template: 'n:' + hash(describe(req, 'slot')), phashes };
}
