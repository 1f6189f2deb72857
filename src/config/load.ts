import { readFileSync } from 'node:fs';
import { Value } from 'typebox/value';
import YAML from 'yaml';
import { outboundUrlProblem } from '../images/ssrf.js';
import { ConfigSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Plain = Record<string, unknown>;

const camelToEnv = (key: string): string => 'GLIMPSE_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** Read GLIMPSE_* variables for every top-level key and one level of nested objects (GLIMPSE_SIMULATED_TTFT_MS). */
export function configFromEnv(env: NodeJS.ProcessEnv): Plain {
  const out: Plain = {};
  const props = ConfigSchema.properties as Record<string, { type?: string; properties?: Record<string, unknown> }>;
  for (const [key, schema] of Object.entries(props)) {
    if (schema.type === 'object' && schema.properties) {
      const nested: Plain = {};
      for (const sub of Object.keys(schema.properties)) {
        const v = env[camelToEnv(key) + '_' + camelToEnv(sub).slice('GLIMPSE_'.length)];
        if (v !== undefined && v !== '') nested[sub] = v;
      }
      if (Object.keys(nested).length) out[key] = nested;
      continue;
    }
    const v = env[camelToEnv(key)];
    if (v !== undefined && v !== '') out[key] = v;
  }
  if (env.GLIMPSE_MODEL) out.model = env.GLIMPSE_MODEL;
  return out;
}

/**
 * `model` (--model, GLIMPSE_MODEL, `model:` in a file) is the short name of modelPath. It is read
 * per layer, so a flag still beats the environment and the environment a file, whichever name each uses.
 */
function modelAlias(layer: Plain): Plain {
  if (!('model' in layer)) return layer;
  const { model, ...rest } = layer;
  if (rest.modelPath !== undefined && rest.modelPath !== model) {
    throw new ConfigError(
      `model (${JSON.stringify(model)}) and modelPath (${JSON.stringify(rest.modelPath)}) are the same setting given twice with different values; keep one of --model / --model-path (GLIMPSE_MODEL / GLIMPSE_MODEL_PATH).`,
    );
  }
  return model === undefined ? rest : { ...rest, modelPath: model };
}

export function configFromFile(path: string): Plain {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(
      `Config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(`Config file ${path} must hold an object of settings.`);
  return parsed as Plain;
}

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k] as Plain, v) : v;
  }
  return out;
}

type PropSchema = { type?: string; properties?: Record<string, unknown>; patternProperties?: Record<string, unknown> };

const splitCommas = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * `id=value,id=value` as an object, for map settings given as a flag or env value. A pair
 * without '=' is kept whole under its own text, so validation names it rather than dropping it.
 */
function parsePairs(v: string): Plain {
  // fromEntries defines own properties, so a key like __proto__ stays a key.
  return Object.fromEntries(
    splitCommas(v).map((pair) => {
      const i = pair.lastIndexOf('=');
      return i > 0 ? [pair.slice(0, i).trim(), pair.slice(i + 1).trim()] : [pair, pair];
    }),
  );
}

/** Comma-separated strings become arrays or id=value maps where the schema wants one (flags and env). */
function splitLists(input: Plain, props: Record<string, PropSchema> = ConfigSchema.properties as never): Plain {
  const out: Plain = { ...input };
  for (const [k, v] of Object.entries(out)) {
    if (props[k]?.type === 'array' && typeof v === 'string') {
      out[k] = splitCommas(v);
    } else if (props[k]?.type === 'object' && props[k]?.patternProperties && typeof v === 'string') {
      out[k] = parsePairs(v);
    } else if (props[k]?.type === 'object' && props[k]?.properties && isPlain(v)) {
      // nested settings (GLIMPSE_IMAGES_ALLOW_DOMAINS=a.com,b.com) split the same way
      out[k] = splitLists(v, props[k]!.properties as never);
    }
  }
  return out;
}

/**
 * Build the config: defaults < file < env < flags. Throws ConfigError with every problem,
 * each naming the setting, its flag and its env variable.
 */
/** Settings whose values are secrets. */
const SECRET_SETTINGS =
  /^(apiKeys(\.\d+)?|upstreamApiKey|fallbackUpstreamApiKey|redisUrl|jobs\.webhookSecret|moderation\.apiKey)$/;

export function loadConfig(opts: { flags?: Plain; env?: NodeJS.ProcessEnv; file?: string } = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? (env.GLIMPSE_CONFIG || undefined);
  const layers = [file ? configFromFile(file) : {}, configFromEnv(env), opts.flags ?? {}].map((layer) =>
    splitLists(modelAlias(layer)),
  );
  let merged: Plain = {};
  for (const layer of layers) merged = deepMerge(merged, layer);

  const unknown = Object.keys(merged).filter((k) => !(k in ConfigSchema.properties));
  if (unknown.length) throw new ConfigError(`Unknown setting${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`);

  let value: unknown = Value.Default(ConfigSchema, merged);
  value = Value.Convert(ConfigSchema, value);
  const errors = [...Value.Errors(ConfigSchema, value)];
  if (errors.length) {
    const lines = errors.slice(0, 10).map((e) => {
      const path = (e as { instancePath?: string }).instancePath ?? '';
      const key = path.replace(/^\//, '').replace(/\//g, '.') || '(root)';
      const [top = key, sub] = key.split('.');
      // Secrets are never echoed into an error (it ends up on a terminal, in journald, in a log shipper).
      const message = ownMessage(e) ?? e.message;
      const got =
        key === '(root)'
          ? ''
          : SECRET_SETTINGS.test(key)
            ? ' (value not shown: it is a secret)'
            : ` (got ${JSON.stringify(getPath(value as Plain, key))})`;
      // Nested settings (images.maxEdge) have their own env name; their flags, where there is one, are the CLI's to name.
      if (sub !== undefined && (ConfigSchema.properties as Record<string, PropSchema>)[top]?.properties) {
        return `  ${key}: ${message}${got} — set with ${camelToEnv(top)}_${camelToEnv(sub).slice('GLIMPSE_'.length)} or ${top}.${sub} in the config file`;
      }
      const flag = '--' + top.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
      return `  ${key}: ${message}${got} — set with ${flag} or ${camelToEnv(top)}`;
    });
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  checkModerationUrl((value as Config).moderation);
  return withoutDeprecated(value as Config);
}

/**
 * The moderation URL is checked as job webhooks are (http(s), no credentials, no forbidden literal
 * address; names are resolved and checked again on every call), here at start: a typo must stop
 * the server, not refuse every request later.
 */
function checkModerationUrl(m: Config['moderation']): void {
  if (m.url === undefined) return;
  const problem = outboundUrlProblem(m.url, m);
  if (!problem) return;
  const got = problem.kind === 'credentials' ? '' : ` (got ${JSON.stringify(m.url)})`;
  const hint = {
    syntax: '; write it whole, e.g. https://api.openai.com/v1/moderations',
    scheme: '',
    credentials: "; give the service's key as moderation.apiKey (--moderation-api-key) instead",
    forbidden: '; for a service on your own network set --moderation-allow-private-networks',
  }[problem.kind];
  throw new ConfigError(
    `Invalid configuration:\n  moderation.url: ${problem.why}${hint}${got} — set with --moderation-url or GLIMPSE_MODERATION_URL`,
  );
}

let warnedBatchSize = false;

/** Old names still read: maxBatchSize is maxInFlight (the new name wins when both are set), said once per process. */
function withoutDeprecated(config: Config): Config {
  if (config.maxBatchSize === undefined) return config;
  const { maxBatchSize, ...rest } = config;
  if (!warnedBatchSize) {
    warnedBatchSize = true;
    process.emitWarning(
      'maxBatchSize (--max-batch-size, GLIMPSE_MAX_BATCH_SIZE) is now maxInFlight (--max-in-flight, GLIMPSE_MAX_IN_FLIGHT); the old name still works for now.',
      { type: 'DeprecationWarning', code: 'GLIMPSE_MAX_BATCH_SIZE' },
    );
  }
  return { ...rest, maxInFlight: rest.maxInFlight ?? maxBatchSize };
}

/**
 * The failing schema's own `errorMessage`, when it has one: "must match pattern ^https?://..." tells
 * an operator less than a sentence with an example. Enum failures list the words allowed.
 */
function ownMessage(e: { schemaPath?: string; keyword?: string; params?: unknown }): string | undefined {
  let node: unknown = ConfigSchema;
  for (const part of (e.schemaPath ?? '').replace(/^#\/?/, '').split('/').filter(Boolean))
    node = isPlain(node) ? node[part] : undefined;
  if (isPlain(node) && typeof node.errorMessage === 'string') return node.errorMessage;
  const allowed = (e.params as { allowedValues?: unknown[] } | undefined)?.allowedValues;
  if (e.keyword === 'enum' && Array.isArray(allowed)) return `must be one of ${allowed.join(', ')}`;
  return undefined;
}

function getPath(obj: Plain, dotted: string): unknown {
  let cur: unknown = obj;
  for (const part of dotted.split('.'))
    cur = isPlain(cur) ? cur[part] : Array.isArray(cur) ? (cur as unknown[])[Number(part)] : undefined;
  return cur;
}

/** Name the model is served under. */
export function servedModelName(config: Config): string {
  if (config.modelName) return config.modelName;
  if (config.engine === 'upstream') return config.upstreamModel ?? 'default';
  if (config.engine === 'simulated') return 'glimpse-simulated';
  const parts = config.modelPath.replace(/[\\/]+$/, '').split(/[\\/]/);
  return parts[parts.length - 1] || config.modelPath;
}
