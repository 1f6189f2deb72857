/**
 * The engine an HTTP worker uses when the model lives in the cluster primary: every generation is
 * a request over the IPC channel, and its events come back on the same channel. The worker keeps
 * its whole pipeline (validation, images, cache, quotas, scheduler, dialects); only the model's
 * work crosses, with the decoded pixels (no re-encode, so answers match a single process).
 */
import {
  GlimpseError,
  type Engine,
  type EngineHealth,
  type EngineInfo,
  type GenerateEvent,
  type GenerateRequest,
} from '../core/index.js';
import {
  fromWire,
  isGlimpseMessage,
  type EngineSnapshot,
  type PrimaryMessage,
  type WorkerMessage,
} from './protocol.js';

/** The IPC end the engine talks through (the worker's `process`; a stand-in in unit use). */
export interface Channel {
  send(msg: WorkerMessage): void;
  readonly connected: boolean;
  on(event: 'message', fn: (msg: unknown) => void): void;
  on(event: 'disconnect', fn: () => void): void;
}

/** Events of one generation, waiting for the worker's pipeline to read them. */
class Inbox {
  private events: GenerateEvent[] = [];
  private wake: (() => void) | undefined;

  push(ev: GenerateEvent): void {
    this.events.push(ev);
    this.wake?.();
    this.wake = undefined;
  }

  async next(): Promise<GenerateEvent> {
    while (!this.events.length) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.events.shift()!;
  }
}

const gone = (): GenerateEvent => ({
  type: 'error',
  error: new GlimpseError(
    'engine_unavailable',
    'The process that owns the model is gone; this worker is shutting down.',
  ),
});

export function createRemoteEngine(first: EngineSnapshot, channel: Channel): Engine {
  let snapshot = first;
  let ids = 0;
  const open = new Map<number, Inbox>();
  // What the model could start now, as the primary last told it (absent: the engine has no capacity to tell).
  let free = first.free ?? 0;
  const grown = new Set<() => void>();

  channel.on('message', (raw) => {
    if (!isGlimpseMessage<PrimaryMessage>(raw)) return;
    if (raw.type === 'glimpse:engine') snapshot = raw.engine;
    else if (raw.type === 'glimpse:capacity') {
      const grew = raw.free > free;
      free = raw.free;
      if (grew) for (const fn of grown) fn();
    } else if (raw.type === 'glimpse:event') open.get(raw.id)?.push(fromWire(raw.event));
  });
  // The primary died or cut us off: no event will come for anything in flight.
  channel.on('disconnect', () => {
    for (const inbox of open.values()) inbox.push(gone());
  });

  /** False when the channel closed under us (the 'disconnect' handler then ends what is open). */
  const trySend = (msg: WorkerMessage): boolean => {
    try {
      if (!channel.connected) return false;
      channel.send(msg);
      return true;
    } catch {
      return false;
    }
  };

  // This worker may run what it already runs plus what the model has free; a slot two workers both
  // claim is settled in the primary (the later one waits there for the next).
  const capacity =
    first.free === undefined
      ? {}
      : {
          capacity: () => open.size + free,
          onCapacityChange: (fn: () => void) => {
            grown.add(fn);
            return () => grown.delete(fn);
          },
        };

  return {
    ...capacity,
    get imageInput() {
      return snapshot.imageInput;
    },
    get supportsTools() {
      return snapshot.supportsTools;
    },
    get supportsLogprobs() {
      return snapshot.supportsLogprobs;
    },
    // The primary loads the model; the worker only follows its state.
    start: async () => {},
    info: (): EngineInfo => snapshot.info,
    health: (): EngineHealth =>
      channel.connected
        ? snapshot.health
        : { status: 'unhealthy', modelLoaded: false, ready: false, reason: 'The process that owns the model is gone.' },
    close: async () => {},
    async *generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent> {
      if (!channel.connected) {
        yield gone();
        return;
      }
      const id = ++ids;
      const inbox = new Inbox();
      open.set(id, inbox);
      let ended = false;
      const cancel = () => {
        if (!ended) trySend({ type: 'glimpse:cancel', id });
      };
      signal.addEventListener('abort', cancel, { once: true });
      try {
        // Claim the slot here at once: until the primary's next word, what it said was free is one less.
        free = Math.max(0, free - 1);
        if (!trySend({ type: 'glimpse:generate', id, req })) inbox.push(gone());
        if (signal.aborted) cancel();
        for (;;) {
          const ev = await inbox.next();
          ended = ev.type === 'done' || ev.type === 'error';
          yield ev;
          if (ended) return;
        }
      } finally {
        // A reader that stops early (client gone, deadline) frees the model's slot too.
        cancel();
        ended = true;
        signal.removeEventListener('abort', cancel);
        open.delete(id);
      }
    },
  };
}
