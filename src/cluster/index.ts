export { runPrimary, workerConfig } from './primary.js';
export { workerCount } from './protocol.js';
