export { ConfigSchema, type Config } from './schema.js';
export { DEFAULT_MAX_IN_FLIGHT } from './schema/server.js';
export { loadConfig, ConfigError, servedModelName, configFromEnv, configFromFile } from './load.js';
export { resolveStateDir } from './state-dir.js';
