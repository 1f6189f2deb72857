/**
 * Simulated engine: a latency model for load tests and UI work. It never touches a model; every
 * answer is synthetic and labelled so (/health, /v1/models). Text is deterministic for the same
 * request and seed, so tests can pin it.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/index.js';
import type { Engine, GenerateEvent, GenerateRequest } from '../core/index.js';

export const SIMULATED_MODEL = 'glimpse-simulated';

const WORDS = (
  'the image shows a small scene with soft light and clear shapes ; in the foreground there is an object ' +
  'whose edges are sharp , while the background fades into muted colours . the composition is balanced , ' +
  'and nothing in it looks out of place . this answer is simulated by glimpse for load testing .'
).split(' ');

/** Rough token count: what a BPE tokenizer would give for plain text, within a factor. */
export function approxTokenCount(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function promptTokenCount(req: GenerateRequest): number {
  let n = 0;
  for (const m of req.messages) {
    n += 4;
    for (const p of m.content) n += p.type === 'text' ? approxTokenCount(p.text) : 64;
  }
  return n;
}

/** Deterministic word stream from a hash of the request (and seed). */
function* wordStream(req: GenerateRequest): Generator<string> {
  const h = createHash('sha256');
  for (const m of req.messages)
    for (const p of m.content)
      h.update(p.type === 'text' ? p.text : p.type === 'document' ? 'doc' : (p.resolved?.sha256 ?? 'img'));
  h.update(String(req.sampling.seed ?? ''));
  let offset = h.digest().readUInt32BE(0) % WORDS.length;
  for (;;) yield WORDS[offset++ % WORDS.length]!;
}

export function createSimulatedEngine(config: Config): Engine {
  const { ttftMs, tokensPerSecond, reasoningTokens, answerTokens } = config.simulated;
  const model = config.modelName ?? SIMULATED_MODEL;
  const perToken = 1000 / tokensPerSecond;

  return {
    // It reads only the fingerprints, so no encode is spent.
    imageInput: 'pixels',
    async start() {},
    async *generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent> {
      const promptTokens = promptTokenCount(req);
      try {
        await sleep(ttftMs, undefined, { signal });
        const words = wordStream(req);
        let reasoned = 0;
        for (; reasoned < reasoningTokens && req.thinking !== false; reasoned++) {
          if (reasoned > 0) await sleep(perToken, undefined, { signal });
          yield { type: 'reasoning', text: (reasoned ? ' ' : '') + words.next().value };
        }
        // Reasoning tokens are generated tokens too, as every API counts them.
        const usage = (answered: number) => ({
          promptTokens,
          completionTokens: answered + reasoned,
          ...(reasoned ? { reasoningTokens: reasoned } : {}),
        });
        let text = '';
        let completionTokens = 0;
        for (; completionTokens < Math.min(req.sampling.maxTokens, answerTokens);) {
          if (completionTokens > 0 || reasoningTokens > 0) await sleep(perToken, undefined, { signal });
          const piece = (completionTokens ? ' ' : '') + words.next().value;
          completionTokens++;
          const before = text.length;
          text += piece;
          const stopAt = firstStop(text, req.sampling.stop, before);
          if (stopAt >= 0) {
            const keep = text.slice(before, stopAt);
            if (keep) yield { type: 'token', text: keep };
            yield { type: 'usage', usage: usage(completionTokens) };
            yield { type: 'done', finishReason: 'stop' };
            return;
          }
          yield { type: 'token', text: piece };
        }
        yield { type: 'usage', usage: usage(completionTokens) };
        yield { type: 'done', finishReason: completionTokens >= answerTokens ? 'stop' : 'length' };
      } catch (err) {
        if (signal.aborted) {
          yield { type: 'done', finishReason: 'cancelled' };
          return;
        }
        throw err;
      }
    },
    info: () => ({
      engine: 'simulated',
      model,
      models: [{ id: model, ownedBy: 'glimpse (simulated engine: synthetic answers, no model)' }],
      device: 'none (simulated)',
      simulated: true,
    }),
    health: () => ({ status: 'healthy', modelLoaded: true, ready: true }),
    async close() {},
  };
}

/** Index in `text` where a stop string begins, searching only where new text could complete one. */
export function firstStop(text: string, stops: string[], newFrom: number): number {
  let best = -1;
  for (const s of stops) {
    if (!s) continue;
    const i = text.indexOf(s, Math.max(0, newFrom - s.length + 1));
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
