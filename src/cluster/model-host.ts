/**
 * The primary's side of the embedded engine: it owns the one copy of the model (weights load
 * once, in one process, with the engine's own worker threads) and runs the generations the HTTP
 * workers ask for over IPC. A worker that exits has its generations cancelled here, so the model's
 * slots free within one decoding step.
 *
 * Why IPC rather than a model process serving glimpse's own HTTP API on a loopback port (with the
 * workers on the upstream engine against it): over HTTP the normalized image would be encoded to
 * JPEG and decoded again (lossy: answers would differ from one process), engine errors would come
 * back as upstream errors (context_length_exceeded turned into invalid_request), and the request
 * would be validated, limited and queued twice. Over IPC the worker's GenerateRequest, pixels
 * included, reaches the engine as it is, and its events come back as they are. The model's
 * threads run in the engine's own worker threads, so the primary's event loop only relays.
 *
 * Admission across workers: the engine keeps no queue (its capacity is its free worker threads),
 * and each HTTP worker's scheduler holds its own requests. So the host tells every worker what the
 * model could start now (`glimpse:capacity`, on every change), and each worker's scheduler admits
 * against its own running generations plus that. Two workers may claim the same free slot in one
 * instant; the loser waits here, first come first served, for the next slot (the only wait in
 * this process, at most one per slot raced for), and what is free is told net of it.
 */
import type { Worker } from 'node:cluster';
import type { Engine } from '../core/index.js';
import type { Logger } from '../observability/index.js';
import {
  isGlimpseMessage,
  reviveRequest,
  toWire,
  type EngineSnapshot,
  type PrimaryMessage,
  type WorkerMessage,
} from './protocol.js';

export interface ModelHost {
  snapshot(): EngineSnapshot;
  /** The snapshot a new worker starts from, with what the model could start now. */
  setupSnapshot(): EngineSnapshot;
  /** Serve one worker's generate/cancel messages; returns the handler to detach on its exit. */
  attach(worker: Worker): void;
  /** Cancel everything a worker that exited still had running. */
  detach(worker: Worker): void;
  close(): Promise<void>;
}

/** How often the engine's state is compared with what the workers were last told. */
const STATE_POLL_MS = 250;

export function createModelHost(engine: Engine, logger: Logger, workers: () => Iterable<Worker>): ModelHost {
  const running = new Map<Worker, Map<number, AbortController>>();
  const snapshot = (): EngineSnapshot => ({
    imageInput: engine.imageInput,
    supportsTools: engine.supportsTools,
    supportsLogprobs: engine.supportsLogprobs,
    info: engine.info(),
    health: engine.health(),
  });
  const send = (worker: Worker, msg: PrimaryMessage) => {
    // A worker gone between two events is detached by its exit; nothing to tell it.
    if (worker.isConnected()) worker.send(msg, undefined, () => {});
  };

  // Loading progress (downloads, warm-up) and readiness reach every worker's /health and /ready.
  let told = JSON.stringify(snapshot());
  const poll = setInterval(() => {
    const now = snapshot();
    const text = JSON.stringify(now);
    if (text === told) return;
    told = text;
    for (const w of workers()) send(w, { type: 'glimpse:engine', engine: now });
  }, STATE_POLL_MS);
  poll.unref();

  // Generations running in the engine, and those two workers raced for one slot and lost, waiting for the next.
  let inFlight = 0;
  const pending: Array<{ go: () => void }> = [];
  const capacity = (): number => engine.capacity?.() ?? Infinity;
  const free = (): number => Math.max(0, capacity() - inFlight - pending.length);
  let toldFree = -1;
  const tellFree = () => {
    if (!engine.capacity) return;
    const now = free();
    if (now === toldFree) return;
    toldFree = now;
    for (const w of workers()) send(w, { type: 'glimpse:capacity', free: now });
  };
  const admitWaiting = () => {
    while (pending.length && inFlight < capacity()) {
      inFlight++;
      pending.shift()!.go();
    }
    tellFree();
  };
  const unsubscribe = engine.onCapacityChange?.(admitWaiting);
  /** A slot in the engine for one generation; false when the worker cancelled it while it waited. */
  const admit = (signal: AbortSignal): Promise<boolean> | boolean => {
    if (!pending.length && inFlight < capacity()) {
      inFlight++;
      tellFree();
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const entry = {
        go: () => {
          signal.removeEventListener('abort', drop);
          resolve(true);
        },
      };
      const drop = () => {
        pending.splice(pending.indexOf(entry), 1);
        resolve(false);
        tellFree();
      };
      pending.push(entry);
      signal.addEventListener('abort', drop, { once: true });
      tellFree();
    });
  };

  const engineStarted = engine.start().catch((err: unknown) => logger.error({ err }, 'engine failed to start'));

  async function run(worker: Worker, id: number, req: WorkerMessage & { type: 'glimpse:generate' }): Promise<void> {
    const mine = running.get(worker) ?? new Map<number, AbortController>();
    running.set(worker, mine);
    const ac = new AbortController();
    mine.set(id, ac);
    if (!(await admit(ac.signal))) {
      mine.delete(id);
      send(worker, { type: 'glimpse:event', id, event: { type: 'done', finishReason: 'cancelled' } });
      return;
    }
    try {
      for await (const ev of engine.generate(reviveRequest(req.req), ac.signal))
        send(worker, { type: 'glimpse:event', id, event: toWire(ev) });
    } catch (err) {
      // Engines end with an error event rather than throw; this is the guarantee of one terminal event if one does.
      logger.error({ err, worker: worker.id }, 'engine threw during a generation');
      send(worker, {
        type: 'glimpse:event',
        id,
        event: {
          type: 'error',
          error: { code: 'engine_error', message: 'The engine failed during generation.', param: null, headers: {} },
        },
      });
    } finally {
      mine.delete(id);
      inFlight--;
      admitWaiting();
    }
  }

  return {
    snapshot,
    setupSnapshot: () => (engine.capacity ? { ...snapshot(), free: free() } : snapshot()),
    attach(worker) {
      worker.on('message', (msg: unknown) => {
        if (!isGlimpseMessage<WorkerMessage>(msg)) return;
        if (msg.type === 'glimpse:generate') void run(worker, msg.id, msg);
        else if (msg.type === 'glimpse:cancel') running.get(worker)?.get(msg.id)?.abort();
      });
    },
    detach(worker) {
      for (const ac of running.get(worker)?.values() ?? []) ac.abort();
      running.delete(worker);
    },
    async close() {
      clearInterval(poll);
      unsubscribe?.();
      await engineStarted;
      await engine.close();
    },
  };
}
