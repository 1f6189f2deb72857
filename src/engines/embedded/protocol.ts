/**
 * Messages between the engine (main thread) and a model worker thread. Images travel as
 * transferred ArrayBuffers (no copy); cancellation travels through shared memory so the
 * decoding loop sees it at its next step even while it never yields to the message queue.
 */
import type { ExtraSampling, FinishReason, TokenLogprob, Usage } from '../../core/index.js';

export interface WorkerInit {
  /** Local directory holding the model files (already downloaded). */
  modelDir: string;
  /** transformers.js dtype, or null to let the model's own config decide. */
  dtype: string | null;
  device: 'cpu' | 'cuda';
  /** Threads onnxruntime may use inside one run. */
  intraOpThreads: number;
  /** Image tiles per vision-encoder run (0: all at once). */
  visionBatch: number;
  /** Int32Array over this: slot 0 is set to 1 to stop the current generation. */
  cancelFlag: SharedArrayBuffer;
}

export type WorkerPart = { type: 'text'; text: string } | { type: 'image'; index: number };

export interface WorkerGenerate {
  type: 'generate';
  id: string;
  messages: { role: string; content: WorkerPart[] }[];
  /** Encoded image bytes, or decoded 8-bit RGB pixels with their size. */
  images: WorkerImage[];
  /** Variables for the chat template beside messages (chat_template_kwargs, enable_thinking). */
  templateArgs?: Record<string, unknown>;
  maxTokens: number;
  temperature: number;
  topP: number;
  /** top_k, min_p and the penalties, where the request set them. */
  extra: ExtraSampling;
  /** Send each token's log probability with this many alternatives (absent: none). */
  logprobs?: number;
  seed: number;
  stop: string[];
  maxContextLength: number;
  /** Tokens within this many ms of the last piece sent are sent together; 0 sends each at once. */
  streamIntervalMs: number;
}

/**
 * shutdown: finish (the engine has already raised the stop flag), release the model, exit.
 * simulate_crash: die from an uncaught exception at the end of the current step, as a bug would;
 * used by tests to prove the engine notices and recovers.
 */
export type MainToWorker = WorkerGenerate | { type: 'shutdown' } | { type: 'simulate_crash' };

export interface LoadedInfo {
  modelType: string;
  dtype: string;
  device: string;
  contextLength?: number;
  loadMs: number;
}

export type WorkerToMain =
  | { type: 'loaded'; info: LoadedInfo }
  | { type: 'load_failed'; message: string }
  | { type: 'token'; id: string; text: string; logprobs?: TokenLogprob[] }
  | { type: 'done'; id: string; finishReason: FinishReason; usage: Usage }
  | { type: 'failed'; id: string; code: 'context_length_exceeded' | 'invalid_image' | 'engine_error'; message: string };

export type WorkerImage = { encoded: ArrayBuffer } | { rgb: ArrayBuffer; width: number; height: number };

/**
 * onnxruntime session options for a model worker. No spin-waiting between runs: idle onnxruntime
 * threads would otherwise burn the cores that the server's event loop, libvips (image decoding)
 * and the other workers need. bench/embedded gives its direct script the same options, so the
 * comparison measures glimpse, not a different runtime setting.
 */
export function sessionOptions(intraOpThreads: number) {
  return {
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}
