/** Which onnxruntime execution provider the model workers use: CPU, or CUDA when it is installed. */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ModelUnavailableError } from './model-source.js';

/** Whether onnxruntime-node was installed with its CUDA execution provider (ONNXRUNTIME_NODE_INSTALL=cuda12). */
export function cudaProviderInstalled(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  try {
    const require = createRequire(import.meta.url);
    let dir = dirname(require.resolve('onnxruntime-node'));
    while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
    const binRoot = join(dir, 'bin');
    for (const napi of existsSync(binRoot) ? readdirSync(binRoot) : []) {
      if (existsSync(join(binRoot, napi, 'linux', 'x64', 'libonnxruntime_providers_cuda.so'))) return true;
    }
  } catch {
    /* not installed at all: CPU it is */
  }
  return false;
}

/** `--device`: auto takes CUDA when its provider is installed; cuda without it is a start-up failure that says how to fix it. */
export function resolveDevice(requested: 'cpu' | 'cuda' | 'auto'): 'cpu' | 'cuda' {
  if (requested === 'cpu') return 'cpu';
  const cuda = cudaProviderInstalled();
  if (requested === 'cuda' && !cuda) {
    throw new ModelUnavailableError(
      "--device cuda needs onnxruntime-node's CUDA execution provider, which is not installed; fetch it with ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node (CUDA 12 and cuDNN 9 on the machine), or use --device cpu.",
    );
  }
  return cuda ? 'cuda' : 'cpu';
}
