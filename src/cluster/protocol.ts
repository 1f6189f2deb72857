/**
 * Messages between the cluster primary and its HTTP worker processes (Node's IPC channel, with
 * 'advanced' serialization so image pixels travel as Buffers, not JSON arrays). Every type name
 * starts with `glimpse:` so prom-client's own cluster messages pass by untouched.
 */
import { availableParallelism } from 'node:os';
import type { Config } from '../config/index.js';
import {
  GlimpseError,
  type EngineHealth,
  type EngineInfo,
  type ErrorCode,
  type GenerateEvent,
  type GenerateRequest,
  type ImageInput,
} from '../core/index.js';

/** What a worker needs to stand in for the engine the primary owns. */
export interface EngineSnapshot {
  imageInput?: ImageInput;
  supportsTools?: boolean;
  supportsLogprobs?: boolean;
  info: EngineInfo;
  health: EngineHealth;
  /**
   * Generations the model could start now that no worker has claimed (in the setup message only,
   * and only when the engine knows its capacity); later changes come as 'glimpse:capacity'.
   */
  free?: number;
}

/** A GlimpseError as plain data (class instances lose their prototype on the way). */
export interface WireError {
  code: ErrorCode;
  message: string;
  param: string | null;
  headers: Record<string, string>;
}

export type WireEvent = Exclude<GenerateEvent, { type: 'error' }> | { type: 'error'; error: WireError };

export type WorkerMessage =
  /** The worker's first word: it listens for messages now, and waits for its setup. */
  | { type: 'glimpse:hello' }
  | { type: 'glimpse:generate'; id: number; req: GenerateRequest }
  | { type: 'glimpse:cancel'; id: number }
  | { type: 'glimpse:metrics'; id: number };

export type PrimaryMessage =
  /** The worker's setup: the validated config (so workers never parse flags again), its number, and the model owner's engine when the primary owns one. */
  | { type: 'glimpse:setup'; config: Config; worker: number; engine?: EngineSnapshot }
  | { type: 'glimpse:engine'; engine: EngineSnapshot }
  /** What the model could start now, told to every worker whenever it changes (their schedulers admit against it). */
  | { type: 'glimpse:capacity'; free: number }
  | { type: 'glimpse:event'; id: number; event: WireEvent }
  | { type: 'glimpse:metrics'; id: number; text?: string; error?: string };

export function isGlimpseMessage<T extends { type: string }>(msg: unknown): msg is T {
  return (
    typeof msg === 'object' &&
    msg !== null &&
    typeof (msg as { type?: unknown }).type === 'string' &&
    (msg as { type: string }).type.startsWith('glimpse:')
  );
}

export function toWire(ev: GenerateEvent): WireEvent {
  if (ev.type !== 'error') return ev;
  const { code, message, param, headers } = ev.error;
  return { type: 'error', error: { code, message, param, headers } };
}

export function fromWire(ev: WireEvent): GenerateEvent {
  if (ev.type !== 'error') return ev;
  const { code, message, param, headers } = ev.error;
  return { type: 'error', error: new GlimpseError(code, message, { param, headers }) };
}

/**
 * The v8 serializer gives a Buffer back as a Buffer, but say so where the engine relies on it:
 * image pixels and bytes are Buffers again on the model's side, whatever the channel did.
 */
export function reviveRequest(req: GenerateRequest): GenerateRequest {
  const buf = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  for (const m of req.messages) {
    for (const part of m.content) {
      if (part.type !== 'image') continue;
      if (part.source.kind === 'bytes') part.source.data = buf(part.source.data);
      const r = part.resolved;
      if (r?.data) r.data = buf(r.data);
      if (r?.rgb) r.rgb.data = buf(r.rgb.data);
    }
  }
  return req;
}

/** `--workers auto` is one per core the process may run on. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}
