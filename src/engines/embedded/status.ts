/** The embedded engine's lifecycle, and the sentence /health shows for it. */
import type { EngineHealth } from '../../core/index.js';

export type State = 'idle' | 'loading' | 'ready' | 'failed' | 'closed';

export class EngineStatus {
  state: State = 'idle';
  reason: string | undefined = 'The model has not started loading yet.';
  /** Reached ready once: from then on a crashed worker is restarted rather than failing the start. */
  everReady = false;

  set(state: State, reason?: string): void {
    this.state = state;
    this.reason = reason;
    if (state === 'ready') this.everReady = true;
  }

  /** close() may run while start() awaits; a method call keeps TypeScript from narrowing the state away. */
  is(state: State): boolean {
    return this.state === state;
  }

  health(modelLoaded: boolean): EngineHealth {
    switch (this.state) {
      case 'ready':
        return { status: 'healthy', modelLoaded: true, ready: true };
      case 'failed':
      case 'closed':
        return { status: 'unhealthy', modelLoaded: false, ready: false, reason: this.reason };
      default:
        return { status: 'loading', modelLoaded, ready: false, reason: this.reason };
    }
  }
}
