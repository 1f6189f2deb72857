/**
 * The "plain script" side of bench/embedded: transformers.js called directly, in a process of its
 * own (as a user's script would be), driven over IPC by bench/embedded.ts so that the two sides
 * take turns and never share a process, a heap or a garbage collector.
 *
 * It uses glimpse's onnxruntime session options (same threads, no spin-waiting): the comparison
 * is then about what glimpse adds, not a runtime setting. With onnxruntime's defaults, threads
 * left spinning after each run starve this script's own image decode on a 2-core machine (about
 * 9 ms instead of 2 for the 64x48 PNG), which would flatter glimpse by that much.
 *
 * tokens/s is the decode rate (tokens after the first over the time from first to last), the
 * usual split from time to first token; the end-to-end rate (prefill included) is kept as well.
 *
 * Timing starts when the script has the encoded image in hand (like glimpse, which receives it in
 * the request) and the first token is the first one the streamer sees after the prompt.
 */
import { AutoModelForImageTextToText, AutoProcessor, RawImage, env } from '@huggingface/transformers';
import { sessionOptions, solidPng } from '../src/engines/embedded/index.js';
import { decodeRate } from './util.js';

export interface DirectRun {
  type: 'run';
  text: string;
  rgb: [number, number, number];
  /** The image's width and height. */
  size: [number, number];
  maxTokens: number;
}

export interface DirectSample {
  ttftMs: number;
  totalMs: number;
  tokens: number;
  /** Decode rate: tokens after the first, over the time from the first token to the last. */
  tokensPerSecond: number;
  /** Completion tokens over the whole request, prefill included. */
  endToEndTokensPerSecond: number;
  /** CPU time of this whole process (all threads) per completion token. */
  cpuMsPerToken: number;
}

const [modelDir, dtype, threads] = process.argv.slice(2);
const send = (msg: unknown) => process.send!(msg);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

env.allowRemoteModels = false;
const processor = await AutoProcessor.from_pretrained(modelDir!);
const model = await AutoModelForImageTextToText.from_pretrained(modelDir!, {
  dtype: (dtype === 'default' ? undefined : dtype) as never,
  device: 'cpu',
  session_options: sessionOptions(Number(threads)) as never,
});

async function run(p: DirectRun): Promise<DirectSample> {
  const png = solidPng(...p.size, p.rgb);
  const c0 = cpuMs();
  const t0 = performance.now();
  const image = await RawImage.fromBlob(new Blob([new Uint8Array(png)]));
  const prompt = processor.apply_chat_template(
    [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: p.text }] }] as never,
    { add_generation_prompt: true },
  ) as string;
  const inputs = await processor(prompt, [image]);
  let first = 0;
  let last = 0;
  let count = 0;
  let seenPrompt = false;
  await model.generate({
    ...inputs,
    max_new_tokens: p.maxTokens,
    do_sample: false,
    streamer: {
      put() {
        if (!seenPrompt) return void (seenPrompt = true);
        last = performance.now();
        if (!count++) first = last;
      },
      end() {},
    },
  } as never);
  const total = performance.now() - t0;
  return {
    ttftMs: first - t0,
    totalMs: total,
    tokens: count,
    tokensPerSecond: decodeRate(count, first, last),
    endToEndTokensPerSecond: count / (total / 1000),
    cpuMsPerToken: (cpuMs() - c0) / count,
  };
}

process.on('message', (msg: DirectRun | { type: 'exit' }) => {
  if (msg.type === 'exit') {
    void model.dispose().finally(() => process.exit(0));
    return;
  }
  run(msg).then(
    (sample) => send({ type: 'sample', sample }),
    (err: Error) => send({ type: 'error', message: err.message }),
  );
});
send({ type: 'ready' });
