/**
 * Where the model's files come from: a local directory as given, glimpse's cache, or the hub
 * (downloaded into the cache first). The worker only ever loads from a local directory.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  downloadFileWithRetry,
  fetchText,
  HubError,
  ProgressTracker,
  readManifest,
  remoteSize,
  writeManifest,
  type DownloadProgress,
  type HubOptions,
} from './download.js';
import { modelSource, PROFILES } from './profiles.js';

/** transformers.js dtypes glimpse lets users pick, with the file-name suffix each one loads. */
export const DTYPE_SUFFIX: Record<string, string> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
};

/** Quantized first (smaller, faster on CPU), then full precision, then the rest. */
const AUTO_ORDER = ['q8', 'fp32', 'fp16', 'int8', 'uint8', 'q4', 'bnb4', 'q4f16'];

export interface ModelSourceOptions {
  modelPath: string;
  cacheDir: string;
  offline: boolean;
  hubUrl: string;
  revision: string;
  /** 'auto' or one of DTYPE_SUFFIX's keys. */
  dtype: string;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  hubToken?: string;
  /** Transfer retries and first backoff (tests shorten them). */
  retries?: number;
  retryDelayMs?: number;
}

export interface ResolvedModel {
  dir: string;
  /** dtype to pass to transformers.js; null lets the model's own transformers.js_config decide. */
  dtype: string | null;
  source: 'local' | 'cache' | 'download';
}

/** Raised with one sentence that says what failed, where glimpse looked, and how to fix it. */
export class ModelUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelUnavailableError';
  }
}

/** $XDG_CACHE_HOME/glimpse/models, else ~/.cache/glimpse/models. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'glimpse', 'models');
}

export function modelCacheDir(cacheDir: string, modelId: string, revision: string): string {
  return join(cacheDir, ...modelId.split('/'), revision);
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

function readConfig(dir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

function configDtype(config: Record<string, unknown>): unknown {
  return (config['transformers.js_config'] as { dtype?: unknown } | undefined)?.dtype;
}

/** For a local directory with dtype 'auto': the model's own choice, else the first dtype whose decoder file is there. */
export function pickLocalDtype(dir: string, requested: string): string | null {
  if (requested !== 'auto') return requested;
  if (configDtype(readConfig(dir))) return null;
  const onnxDir = join(dir, 'onnx');
  const names = existsSync(onnxDir) ? readdirSync(onnxDir) : [];
  const decoder = names.find((n) => n.startsWith('decoder_model_merged'))
    ? 'decoder_model_merged'
    : (names.find((n) => n.startsWith('model'))?.replace(/[_.].*$/, '') ?? 'model');
  for (const d of AUTO_ORDER) if (names.includes(`${decoder}${DTYPE_SUFFIX[d]}.onnx`)) return d;
  return 'fp32';
}

/** Files the processor/tokenizer may read; absent ones are skipped. */
const AUX_FILES = [
  'generation_config.json',
  'preprocessor_config.json',
  'processor_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.json',
  'chat_template.jinja',
  'video_preprocessor_config.json',
];
const REQUIRED_AUX = new Set(['tokenizer.json', 'tokenizer_config.json']);

export async function resolveModel(opts: ModelSourceOptions): Promise<ResolvedModel> {
  const local = resolve(opts.modelPath);
  if (existsSync(local) && statSync(local).isDirectory()) {
    if (!existsSync(join(local, 'config.json'))) {
      throw new ModelUnavailableError(
        `The model directory ${local} has no config.json; point --model-path at a directory exported for transformers.js (config.json, tokenizer files and onnx/*.onnx).`,
      );
    }
    return { dir: local, dtype: pickLocalDtype(local, opts.dtype), source: 'local' };
  }
  // A profile's short name (glm-ocr) stands for its hub id.
  const modelId = modelSource(opts.modelPath);
  if (!HUB_ID.test(modelId) || modelId.includes('..')) {
    throw new ModelUnavailableError(
      `The model path ${opts.modelPath} is neither an existing directory, a Hugging Face model id (owner/name) nor a profile (${PROFILES.map((p) => p.name).join(', ')}); fix --model-path.`,
    );
  }
  const dir = modelCacheDir(opts.cacheDir, modelId, opts.revision);
  // A finished download for the requested dtype (or, for auto, any finished one) loads with no network.
  for (const d of opts.dtype === 'auto' ? ['auto', ...AUTO_ORDER] : [opts.dtype]) {
    const m = readManifest(dir, d);
    if (m) return { dir, dtype: d === 'auto' ? null : d, source: 'cache' };
  }
  if (opts.offline) {
    throw new ModelUnavailableError(
      `Model ${modelId} is not in the cache at ${dir} and --offline forbids downloading it; run once without --offline (or GLIMPSE_OFFLINE=false) to download it, or pass --model-path to a local model directory.`,
    );
  }
  try {
    return await download(modelId, dir, opts);
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    if (err instanceof HubError) {
      if (!err.reachable) {
        throw new ModelUnavailableError(
          `Cannot download model ${modelId}: the model hub at ${opts.hubUrl} could not be reached (${err.message}) and the model is not in the cache at ${dir}; connect to the internet once, point --hub-url (or HF_ENDPOINT) at a reachable mirror (in mainland China: --hub-url https://hf-mirror.com), or pass --model-path to a local model directory.`,
        );
      }
      if (err.status === 401 || err.status === 403 || err.status === 404) {
        throw new ModelUnavailableError(
          `The model hub at ${opts.hubUrl} answered HTTP ${err.status} for ${modelId} (${err.message}); check the id given to --model-path, or set HF_TOKEN if the model is gated.`,
        );
      }
      throw new ModelUnavailableError(
        `Downloading model ${modelId} from ${opts.hubUrl} into ${dir} failed (${err.message}); start glimpse again to resume where it stopped, or pass --model-path to a local model directory.`,
      );
    }
    throw err;
  }
}

async function download(modelId: string, dir: string, opts: ModelSourceOptions): Promise<ResolvedModel> {
  const hub: HubOptions = {
    hubUrl: opts.hubUrl,
    revision: opts.revision,
    signal: opts.signal,
    retries: opts.retries,
    retryDelayMs: opts.retryDelayMs,
    headers: opts.hubToken ? { Authorization: `Bearer ${opts.hubToken}` } : {},
  };
  const configText = await fetchText(modelId, 'config.json', hub);
  if (configText === null) throw new HubError('config.json not found', true, 404);
  const config = JSON.parse(configText) as Record<string, unknown>;
  const dtype = opts.dtype === 'auto' ? (configDtype(config) ? null : 'q8') : opts.dtype;

  // transformers.js decides which graph files this architecture loads; ask it, from the config alone.
  // Imported here, not at the top, so a cached or local model never loads it on the main thread.
  const { ModelRegistry } = await import('@huggingface/transformers');
  const modelFiles = (await ModelRegistry.get_model_files(modelId, {
    config: config as never,
    dtype: (dtype ?? undefined) as never,
  })) as string[];
  const candidates = [...new Set([...modelFiles, ...AUX_FILES])].filter((f) => f !== 'config.json');
  const sizes = await Promise.all(candidates.map(async (f) => [f, await remoteSize(modelId, f, hub)] as const));
  const missingRequired = sizes.filter(([f, s]) => s === null && (REQUIRED_AUX.has(f) || modelFiles.includes(f)));
  if (missingRequired.length) {
    const names = missingRequired.map(([f]) => f).join(', ');
    throw new HubError(
      `the repository has no ${names}${dtype ? ` (dtype ${dtype}; try --dtype fp32 or another one the repository ships)` : ''}`,
      true,
      404,
    );
  }
  const present = sizes.filter(([, s]) => s !== null) as [string, number][];
  const total = present.reduce((a, [, s]) => a + s, 0) + configText.length;
  const tracker = new ProgressTracker(total, (p) => opts.onProgress?.(p));

  await downloadFileWithRetry(modelId, 'config.json', join(dir, 'config.json'), hub, (n, from) =>
    tracker.add('config.json', n, from, n === 0),
  );
  // Smallest first: the JSON files land at once, then the graphs.
  for (const [file] of [...present].sort((a, b) => a[1] - b[1])) {
    const dest = join(dir, file);
    if (existsSync(dest)) {
      tracker.add(file, 0, statSync(dest).size, true);
      continue;
    }
    await downloadFileWithRetry(modelId, file, dest, hub, (n, from) => tracker.add(file, n, from, n === 0));
  }
  tracker.finish('');
  const files = ['config.json', ...present.map(([f]) => f)];
  writeManifest(dir, {
    modelId,
    revision: opts.revision,
    dtype: dtype ?? 'auto',
    files,
    bytes: total,
    completedAt: new Date().toISOString(),
  });
  return { dir, dtype, source: 'download' };
}
