export { ConfigSchema, type Config } from './schema.js';
export { loadConfig, ConfigError, servedModelName, configFromEnv, configFromFile } from './load.js';
