export { ConfigSchema, DEFAULT_MAX_IN_FLIGHT, type Config } from './schema.js';
export { loadConfig, ConfigError, servedModelName, configFromEnv, configFromFile } from './load.js';
export { resolveStateDir } from './state-dir.js';
