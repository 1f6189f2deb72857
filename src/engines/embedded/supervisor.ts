/**
 * What happens after a model worker dies on its own: it is restarted and warmed while the others
 * carry on, unless crashes come so often that a restart will not fix the cause.
 */
import type { Logger } from '../../observability/index.js';
import type { EngineStatus } from './status.js';
import type { WorkerPool } from './worker-pool.js';

/** More crashes than this within a minute means something is wrong that a restart will not fix. */
export const MAX_CRASHES_PER_MINUTE = 5;
const WINDOW_MS = 60_000;

export interface SupervisorDeps {
  logger: Logger;
  status: EngineStatus;
  pool: WorkerPool;
  /** Warm restarted worker `index` and count it toward capacity again (resolves either way: a failed warm-up is not a crash). */
  warmUp: (index: number) => Promise<void>;
  /** Give up: the engine turns unavailable with this reason. */
  fail: (reason: string) => void;
}

export class Supervisor {
  private recentCrashes: number[] = [];
  restarts = 0;

  constructor(private readonly deps: SupervisorDeps) {}

  onCrash(index: number, exitCode: number): void {
    const { status, pool, logger } = this.deps;
    if (status.is('closed')) return;
    // Crashes during the first start are start-up failures (start() reports them); later ones restart the worker.
    if (!status.everReady || status.is('failed')) return;
    const now = Date.now();
    this.recentCrashes = this.recentCrashes.filter((t) => now - t < WINDOW_MS);
    this.recentCrashes.push(now);
    this.restarts++;
    if (this.recentCrashes.length > MAX_CRASHES_PER_MINUTE) {
      this.deps.fail(
        `The model worker crashed ${this.recentCrashes.length} times within a minute, so glimpse stopped restarting it; check the logs for the cause and restart the server.`,
      );
      return;
    }
    logger.error(
      { worker: index, code: exitCode, restarts: this.restarts },
      'embedded model worker died; restarting it',
    );
    if (!pool.anyLoaded(index)) status.set('loading', 'The model worker stopped unexpectedly and is restarting.');
    void pool.spawn(index).then(async (err) => {
      if (status.is('closed') || status.is('failed')) return;
      if (err) {
        this.deps.fail(`The model worker stopped unexpectedly and could not be restarted: ${err}`);
        return;
      }
      await this.deps.warmUp(index);
      if (status.is('loading') && pool.anyLoaded()) status.set('ready');
    });
  }
}
