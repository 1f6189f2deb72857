import { Type, type Static } from 'typebox';
import { embeddedFields } from './schema/embedded.js';
import { httpFields } from './schema/http.js';
import { mediaFields } from './schema/media.js';
import { serverFields } from './schema/server.js';
import { servicesFields } from './schema/services.js';
import { upstreamFields } from './schema/upstream.js';

/**
 * One validated config object. Every field can come from a CLI flag, an environment variable
 * (GLIMPSE_<UPPER_SNAKE>), or a config file (YAML/JSON), in that order of precedence, over the
 * defaults below. Every limit lives here with its default.
 */
export const ConfigSchema = Type.Object({
  ...serverFields,
  ...httpFields,
  ...upstreamFields,
  ...embeddedFields,
  ...mediaFields,
  ...servicesFields,
});

export type Config = Static<typeof ConfigSchema>;
