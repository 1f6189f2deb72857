/**
 * Checks a model directory before transformers.js loads it, so a broken or foreign model fails
 * with one sentence that says what is wrong (in /health and the log) instead of a stack trace
 * from deep inside the library: an architecture it cannot run, a missing ONNX session file, or a
 * processor config that disagrees with the model (image tokens would not line up).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DTYPE_SUFFIX } from './model-source.js';

type Json = Record<string, unknown>;

const readJson = (dir: string, name: string): Json | undefined =>
  existsSync(join(dir, name)) ? (JSON.parse(readFileSync(join(dir, name), 'utf8')) as Json) : undefined;

/** The sessions transformers.js opens for an image-text-to-text model. */
const SESSIONS = ['embed_tokens', 'vision_encoder', 'decoder_model_merged'];

/**
 * Throws an Error whose message is one sentence naming the problem. `supported` is the model types
 * transformers.js maps to an image-text-to-text class; `dtype` null means the model's own choice.
 */
export function checkModelDir(dir: string, dtype: string | null, supported: ReadonlySet<string>): void {
  const config = readJson(dir, 'config.json') ?? {};
  const type = String(config.model_type ?? '');
  const arch = (config.architectures as string[] | undefined)?.[0] ?? 'an unnamed architecture';
  if (!supported.has(type)) {
    throw new Error(
      `its config.json describes ${arch} (model_type ${type || 'missing'}), which transformers.js cannot run as an image-text-to-text model; supported model types: ${[...supported].sort().join(', ')}`,
    );
  }
  for (const session of SESSIONS) {
    const d = sessionDtype(config, session, dtype);
    const file = `onnx/${session}${DTYPE_SUFFIX[d] ?? `_${d}`}.onnx`;
    if (!existsSync(join(dir, file)))
      throw new Error(
        `${file} is missing (dtype ${d}): the export is incomplete; download it again or choose a --dtype whose files are present`,
      );
  }
  const pre = readJson(dir, 'preprocessor_config.json');
  const vision = (config.vision_config ?? {}) as Json;
  // Qwen2-VL family (Qwen-VL, GLM-V, GLM-OCR): the processor cuts patches the vision encoder must agree on.
  const pairs: [string, string][] = [
    ['patch_size', 'patch_size'],
    ['merge_size', 'spatial_merge_size'],
    ['temporal_patch_size', 'temporal_patch_size'],
  ];
  for (const [p, v] of pairs) {
    if (pre?.[p] !== undefined && vision[v] !== undefined && pre[p] !== vision[v]) {
      throw new Error(
        `preprocessor_config.json says ${p} ${String(pre[p])} but config.json's vision_config.${v} is ${String(vision[v])}: the processor and the model disagree, so the image tokens would not line up`,
      );
    }
  }
}

function sessionDtype(config: Json, session: string, dtype: string | null): string {
  if (dtype) return dtype;
  const own = (config['transformers.js_config'] as Json | undefined)?.dtype;
  if (typeof own === 'string') return own;
  if (own && typeof own === 'object' && typeof (own as Json)[session] === 'string')
    return (own as Json)[session] as string;
  return 'fp32';
}
