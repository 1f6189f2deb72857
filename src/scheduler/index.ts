export { Scheduler } from './scheduler.js';
export type { SchedulerOptions, AcquireOptions, Slot, SchedulerStats } from './types.js';
