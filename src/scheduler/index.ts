export { Scheduler, type SchedulerOptions, type AcquireOptions, type Slot, type SchedulerStats } from './scheduler.js';
