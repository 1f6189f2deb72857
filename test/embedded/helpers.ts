import pino from 'pino';
import { loadConfig, type Config } from '../../src/config/index.js';
import type { ChatMessage, GenerateEvent, GenerateRequest, ImagePart, SamplingParams } from '../../src/core/index.js';
import { cpSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelCacheDir, solidPng } from '../../src/engines/embedded/index.js';
import { writeManifest } from '../../src/engines/embedded/download.js';
import { profileFor } from '../../src/engines/embedded/profiles.js';

export const FIXTURE = new URL('../../fixtures/tiny-vlm', import.meta.url).pathname;
/** GLM-OCR's architecture (scripts/make-tiny-vlm.ts --arch glm-ocr). */
export const GLM_FIXTURE = new URL('../../fixtures/tiny-glm-ocr', import.meta.url).pathname;

/**
 * A model cache holding the GLM-OCR-architecture fixture as a finished download of the glm-ocr
 * profile's hub id (files + manifest, fp32), so `--model glm-ocr --cache-dir <it> --offline
 * --dtype fp32` loads it the way a real download would be loaded. The caller removes the directory.
 */
export function glmProfileCache(): string {
  const cacheDir = mkdtempSync(join(tmpdir(), 'glimpse-profile-cache-'));
  const hubId = profileFor('glm-ocr')!.hubId;
  const dir = modelCacheDir(cacheDir, hubId, 'main');
  cpSync(GLM_FIXTURE, dir, { recursive: true });
  const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile());
  writeManifest(dir, {
    modelId: hubId,
    revision: 'main',
    dtype: 'fp32',
    files,
    bytes: 0,
    completedAt: new Date(0).toISOString(),
  });
  return cacheDir;
}

export function fixtureConfig(flags: Record<string, unknown> = {}): Config {
  return loadConfig({ flags: { engine: 'embedded', modelPath: FIXTURE, ...flags }, env: {} });
}

export const quietLogger = pino({ level: 'silent' });

export function imagePart(rgb: [number, number, number], width = 64, height = 48): ImagePart {
  const data = solidPng(width, height, rgb);
  return {
    type: 'image',
    source: { kind: 'bytes', data },
    resolved: { data, mime: 'image/png', width, height, sourceFormat: 'png', sha256: '' },
  };
}

let n = 0;
export function request(
  messages: ChatMessage[],
  sampling: Partial<SamplingParams> = {},
  extra: Partial<GenerateRequest> = {},
): GenerateRequest {
  return {
    id: `t${++n}`,
    model: 'tiny-vlm',
    messages,
    sampling: { maxTokens: 12, temperature: 0, topP: 1, stop: [], ...sampling },
    ...extra,
  };
}

export const askAbout = (rgb: [number, number, number], text = 'What is in this picture?'): ChatMessage[] => [
  { role: 'user', content: [imagePart(rgb), { type: 'text', text }] },
];

export interface Collected {
  events: GenerateEvent[];
  text: string;
  tokens: number;
  terminal: GenerateEvent;
  usage?: { promptTokens: number; completionTokens: number };
}

export async function collect(stream: AsyncIterable<GenerateEvent>): Promise<Collected> {
  const events: GenerateEvent[] = [];
  for await (const ev of stream) events.push(ev);
  const terminal = events[events.length - 1]!;
  const usageEv = events.find((e) => e.type === 'usage');
  return {
    events,
    text: events.map((e) => (e.type === 'token' ? e.text : '')).join(''),
    tokens: events.filter((e) => e.type === 'token').length,
    terminal,
    usage: usageEv?.type === 'usage' ? usageEv.usage : undefined,
  };
}

/** Resolves at the engine's next "capacity may have grown" call. */
export function nextCapacityChange(engine: { onCapacityChange(listener: () => void): () => void }): Promise<void> {
  return new Promise((resolve) => {
    const off = engine.onCapacityChange(() => {
      off();
      resolve();
    });
  });
}

/**
 * Starts `req` (the first read hands it to an idle worker) and cancels it at once; the events it
 * ends with, read to the end.
 */
export async function startThenCancel(
  engine: { generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent> },
  req: GenerateRequest,
): Promise<GenerateEvent[]> {
  const ctrl = new AbortController();
  const it = engine.generate(req, ctrl.signal)[Symbol.asyncIterator]();
  const first = it.next();
  ctrl.abort();
  const events = [];
  for (let r = await first; !r.done; r = await it.next()) events.push(r.value);
  return events;
}
