/**
 * Model worker thread: owns one transformers.js model + processor and runs one generation at a
 * time, so the server's event loop never does tensor work. The engine (main thread) sends
 * 'generate' messages and reads token/done/failed messages back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  AutoModelForImageTextToText,
  AutoProcessor,
  LogitsProcessor,
  RawImage,
  StoppingCriteria,
  env,
  type Tensor,
} from '@huggingface/transformers';
import type { TokenLogprob } from '../../core/index.js';
import {
  sessionOptions,
  type LoadedInfo,
  type MainToWorker,
  type WorkerGenerate,
  type WorkerInit,
  type WorkerToMain,
} from './protocol.js';
import { applyPenalties, chooseToken, createRng, logprobRecord, type LogprobRecord } from './sampling.js';
import { IncrementalDecoder, StopMatcher, TextCoalescer } from './text-stream.js';
import { CancelledBeforeDecoding, groupedTileEncoder, type EncodeImage } from './vision-groups.js';
import { checkModelDir } from './model-check.js';
import { modelInputs } from './vl-inputs.js';

if (!parentPort) throw new Error('worker.ts must run as a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;
const cancelFlag = new Int32Array(init.cancelFlag);

// Everything is on local disk by now (the engine downloads first): never touch the network here.
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = '';

const send = (msg: WorkerToMain): void => port.postMessage(msg);

type Processor = Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;
type Model = Awaited<ReturnType<typeof AutoModelForImageTextToText.from_pretrained>>;

let processor: Processor;
let model: Model;
let contextLength: number | undefined;
let crashRequested = false;

/**
 * Picks the next token with glimpse's seeded sampler (after the penalties) and masks every other
 * logit, so the library's greedy step takes exactly that token.
 */
class SeededSampler extends LogitsProcessor {
  private readonly rng: () => number;
  private readonly penalised: boolean;
  /** Length of each row's prompt, taken at the first step: what follows is the answer. */
  private promptLength: number[] | undefined;
  /** With logprobs asked for: one record per step, of the raw distribution (before penalties and sampling). */
  readonly records: LogprobRecord[] = [];
  constructor(
    private readonly temperature: number,
    private readonly topP: number,
    private readonly extra: WorkerGenerate['extra'],
    seed: number,
    private readonly logprobsTop?: number,
  ) {
    super();
    this.rng = createRng(seed);
    this.penalised = (extra.repetitionPenalty ?? 1) !== 1 || !!extra.presencePenalty || !!extra.frequencyPenalty;
  }
  override _call(inputIds: bigint[][], logits: Tensor): Tensor {
    const vocab = logits.dims.at(-1)!;
    const data = logits.data as Float32Array;
    this.promptLength ??= inputIds.map((ids) => ids.length);
    for (let row = 0; row < data.length / vocab; row++) {
      const slice = data.subarray(row * vocab, (row + 1) * vocab);
      const raw = this.logprobsTop !== undefined ? Float32Array.from(slice) : undefined;
      if (this.penalised) {
        const ids = (inputIds[row] ?? []).map(Number);
        const cut = this.promptLength[row] ?? ids.length;
        applyPenalties(slice, this.extra, ids.slice(0, cut), ids.slice(cut));
      }
      const chosen = chooseToken(
        slice,
        { temperature: this.temperature, topP: this.topP, topK: this.extra.topK, minP: this.extra.minP },
        this.rng,
      );
      if (raw) this.records.push(logprobRecord(raw, chosen, this.logprobsTop!));
      slice.fill(-Infinity);
      slice[chosen] = 0;
    }
    return logits;
  }
}

/** Ends the loop after the step in which the caller let go (client gone, or the pipeline's deadline) or a stop string appeared. */
class StopCheck extends StoppingCriteria {
  constructor(private readonly stopText: () => boolean) {
    super();
  }
  override _call(inputIds: unknown[][]): boolean[] {
    const stop = Atomics.load(cancelFlag, 0) === 1 || crashRequested || this.stopText();
    return inputIds.map(() => stop);
  }
}

async function load(): Promise<void> {
  const t0 = Date.now();
  checkModelDir(
    init.modelDir,
    init.dtype,
    new Set(AutoModelForImageTextToText.MODEL_CLASS_MAPPINGS.flatMap((m) => [...m.keys()])),
  );
  const options = {
    dtype: (init.dtype ?? undefined) as never,
    device: init.device,
    session_options: sessionOptions(init.intraOpThreads),
  };
  [processor, model] = await Promise.all([
    AutoProcessor.from_pretrained(init.modelDir),
    AutoModelForImageTextToText.from_pretrained(init.modelDir, options),
  ]);
  encodeTilesInGroups(init.visionBatch);
  const cfg = model.config as unknown as {
    model_type: string;
    text_config?: { max_position_embeddings?: number };
    max_position_embeddings?: number;
  };
  contextLength = cfg.text_config?.max_position_embeddings ?? cfg.max_position_embeddings;
  const info: LoadedInfo = {
    modelType: cfg.model_type,
    dtype: init.dtype ?? 'model default',
    device: init.device,
    contextLength,
    loadMs: Date.now() - t0,
  };
  send({ type: 'loaded', info });
}

/** SmolVLM/Idefics3 tiles through the vision encoder in groups (see vision-groups.ts). */
function encodeTilesInGroups(group: number): void {
  const m = model as unknown as { encode_image?: EncodeImage };
  const modelType = (model.config as unknown as { model_type?: string }).model_type;
  if (group < 1 || !m.encode_image || (modelType !== 'idefics3' && modelType !== 'smolvlm')) return;
  m.encode_image = groupedTileEncoder(m.encode_image.bind(model), group, () => Atomics.load(cancelFlag, 0) === 1);
}

async function generate(msg: WorkerGenerate): Promise<void> {
  let images: InstanceType<typeof RawImage>[];
  try {
    images = await Promise.all(
      msg.images.map(async (img) =>
        'rgb' in img
          ? new RawImage(new Uint8ClampedArray(img.rgb), img.width, img.height, 3)
          : RawImage.fromBlob(new Blob([img.encoded])),
      ),
    );
  } catch (err) {
    send({
      type: 'failed',
      id: msg.id,
      code: 'invalid_image',
      message: `An image could not be decoded: ${(err as Error).message}.`,
    });
    return;
  }
  // The template sees images as {type:'image'} markers in order; the processor expands each into its image tokens.
  const chat = msg.messages.map((m) => ({
    role: m.role,
    content: m.content.map((p) => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image' })),
  }));
  const prompt = processor.apply_chat_template(chat as never, {
    ...msg.templateArgs,
    add_generation_prompt: true,
  }) as string;
  const inputs = await modelInputs(processor as never, prompt, images);
  const promptTokens = inputs.input_ids!.dims.at(-1)!;
  const limit = Math.min(msg.maxContextLength, contextLength ?? Infinity);
  if (promptTokens >= limit) {
    send({
      type: 'failed',
      id: msg.id,
      code: 'context_length_exceeded',
      message: `The prompt is ${promptTokens} tokens (images included); this model's context is ${limit} tokens.`,
    });
    return;
  }
  const maxNew = Math.min(msg.maxTokens, limit - promptTokens);
  if (Atomics.load(cancelFlag, 0) === 1) {
    // Stopped while the images were being prepared: skip the model entirely.
    send({ type: 'done', id: msg.id, finishReason: 'cancelled', usage: { promptTokens, completionTokens: 0 } });
    return;
  }

  const tokenizer = processor.tokenizer!;
  const decoder = new IncrementalDecoder((ids) =>
    ids.length ? tokenizer.decode(ids, { skip_special_tokens: true }) : '',
  );
  const stops = new StopMatcher(msg.stop);
  // Without stop strings nothing needs the text token by token, so the ids are decoded once per
  // piece sent (at the stream interval); with stop strings each token is decoded as it comes, to
  // stop at the step where one appears.
  const lazyText = !stops.active;
  // Log probabilities go out with the next piece of text (or, at the end, on their own).
  const logprobs: TokenLogprob[] = [];
  const takeLogprobs = () => (logprobs.length ? { logprobs: logprobs.splice(0) } : {});
  const out = new TextCoalescer(
    msg.streamIntervalMs,
    (text) => send({ type: 'token', id: msg.id, text, ...takeLogprobs() }),
    lazyText ? { source: () => decoder.take() } : {},
  );
  const sampler = new SeededSampler(msg.temperature, msg.topP, msg.extra, msg.seed, msg.logprobs);
  const tokenText = new Map<number, string>();
  const asLogprob = (id: number, logprob: number) => {
    let token = tokenText.get(id);
    if (token === undefined) tokenText.set(id, (token = tokenizer.decode([id], { skip_special_tokens: false })));
    return { token, logprob, bytes: [...Buffer.from(token, 'utf8')] };
  };
  let completionTokens = 0;
  let lastId = -1;
  let first = true;
  const streamer = {
    put(value: bigint[][]) {
      if (first) {
        first = false; // the prompt itself
        return;
      }
      lastId = Number(value[0]![0]);
      completionTokens++;
      const record = sampler.records[completionTokens - 1];
      // The end-of-answer token is not part of the answer's text, so it has no entry either.
      if (record && !eos.has(record.id))
        logprobs.push({
          ...asLogprob(record.id, record.logprob),
          top: record.top.map((t) => asLogprob(t.id, t.logprob)),
        });
      if (lazyText) {
        decoder.add(lastId);
        out.poke();
      } else out.push(stops.push(decoder.push(lastId)));
    },
    end() {},
  };
  const eos = eosIds();
  try {
    await model.generate({
      ...inputs,
      max_new_tokens: maxNew,
      do_sample: false,
      logits_processor: [sampler] as never,
      stopping_criteria: [new StopCheck(() => stops.stopped)] as never,
      streamer: streamer as never,
    } as never);
  } catch (err) {
    if (!(err instanceof CancelledBeforeDecoding)) throw err;
    send({ type: 'done', id: msg.id, finishReason: 'cancelled', usage: { promptTokens, completionTokens: 0 } });
    return;
  } finally {
    // Text that waited for the interval goes out before done (or before the failure report).
    out.flush();
  }

  if (crashRequested) {
    // Throw outside any promise chain, between runs (never while onnxruntime is mid-run), and never answer.
    setImmediate(() => {
      throw new Error('simulated model worker crash');
    });
    return new Promise<void>(() => undefined);
  }
  out.push(stops.push(decoder.flush()) + stops.flush());
  out.flush();
  if (logprobs.length) send({ type: 'token', id: msg.id, text: '', ...takeLogprobs() });
  const cancelled = Atomics.load(cancelFlag, 0) === 1;
  const finishReason = cancelled ? 'cancelled' : stops.stopped || eos.has(lastId) ? 'stop' : 'length';
  send({ type: 'done', id: msg.id, finishReason, usage: { promptTokens, completionTokens } });
}

function eosIds(): Set<number> {
  const gen = (model.generation_config ?? {}) as { eos_token_id?: number | number[] };
  const cfg = model.config as unknown as {
    eos_token_id?: number | number[];
    text_config?: { eos_token_id?: number | number[] };
  };
  const raw = gen.eos_token_id ?? cfg.eos_token_id ?? cfg.text_config?.eos_token_id ?? [];
  return new Set(Array.isArray(raw) ? raw : [raw]);
}

// One generation at a time: the engine never sends a second before the first is done,
// but a queue here keeps the worker correct even if it did.
let chain: Promise<void> = Promise.resolve();
port.on('message', (msg: MainToWorker) => {
  if (msg.type === 'shutdown') {
    // Ending the thread while onnxruntime runs native work aborts the whole process, so wait
    // for loading and the current generation (already told to stop) to finish first.
    void loading
      .then(() => chain)
      .then(() => model?.dispose())
      .catch(() => undefined)
      .finally(() => process.exit(0));
    return;
  }
  if (msg.type === 'simulate_crash') {
    crashRequested = true;
    return;
  }
  chain = chain.then(() =>
    generate(msg).catch((err: unknown) => {
      send({
        type: 'failed',
        id: msg.id,
        code: 'engine_error',
        message: `Generation failed: ${(err as Error)?.message ?? String(err)}`,
      });
    }),
  );
});

const loading = load().catch((err: unknown) => {
  send({ type: 'load_failed', message: (err as Error)?.message ?? String(err) });
});
