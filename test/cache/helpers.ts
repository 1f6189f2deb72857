import { Value } from 'typebox/value';
import { ConfigSchema, type Config } from '../../src/config/index.js';
import type { GenerateRequest, ResolvedImage } from '../../src/core/index.js';
import type { CachedAnswer } from '../../src/cache/index.js';

export function cacheConfig(
  over: Partial<Config['cache']> = {},
  redisUrl?: string,
): Pick<Config, 'cache' | 'redisUrl'> {
  const d = Value.Default(ConfigSchema, {}) as Config;
  return { cache: { ...d.cache, ...over }, redisUrl };
}

export function fakeImage(sha: string, phash = '0123456789abcdef'): ResolvedImage {
  return {
    data: Buffer.alloc(0),
    mime: 'image/jpeg',
    width: 1,
    height: 1,
    sourceFormat: 'png',
    sha256: sha.padEnd(64, '0'),
    phash,
  };
}

export function request(
  over: {
    text?: string;
    images?: ResolvedImage[];
    temperature?: number;
    seed?: number;
    keyId?: string;
    model?: string;
    maxTokens?: number;
  } = {},
): GenerateRequest {
  return {
    id: 'req-' + Math.random().toString(36).slice(2),
    model: over.model ?? 'glm-4.6v-flash',
    keyId: over.keyId,
    sampling: {
      maxTokens: over.maxTokens ?? 64,
      temperature: over.temperature ?? 0,
      topP: 1,
      seed: over.seed,
      stop: [],
    },
    messages: [
      {
        role: 'user',
        content: [
          ...(over.images ?? [fakeImage('aa')]).map((resolved) => ({
            type: 'image' as const,
            source: { kind: 'base64' as const, data: '' },
            resolved,
          })),
          { type: 'text' as const, text: over.text ?? 'What is in this picture?' },
        ],
      },
    ],
  };
}

export const answer = (text: string): CachedAnswer => ({
  text,
  usage: { promptTokens: 10, completionTokens: 3 },
  finishReason: 'stop',
});
