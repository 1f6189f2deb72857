export * from './core/index.js';
export { loadConfig, type Config } from './config/index.js';
export { createServer, type Server } from './server/index.js';
export { createEngine } from './engines/index.js';
