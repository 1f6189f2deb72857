/**
 * The three ONNX graphs of an Idefics3/SmolVLM export, as transformers.js loads them
 * (onnx/vision_encoder.onnx, onnx/embed_tokens.onnx, onnx/decoder_model_merged.onnx), with
 * the same input/output names and symbolic dims as the published onnx-community exports.
 * Real operations with random weights: a ViT block over conv patch embeddings, pixel-shuffle
 * connector, token embedding, and a Llama decoder (RMSNorm, rotary attention over a KV cache,
 * causal + padding mask, SwiGLU MLP, LM head).
 */
import { BOOL, FLOAT, GraphBuilder, INT64, INT8, randomWeights } from './onnx-builder.js';

export interface TinyDims {
  vocabSize: number;
  hidden: number;
  heads: number;
  headDim: number;
  layers: number;
  intermediate: number;
  visionHidden: number;
  visionHeads: number;
  imageSize: number;
  patchSize: number;
  scaleFactor: number;
  ropeTheta: number;
  rmsEps: number;
  /** ViT blocks in the vision encoder (default 1). */
  visionLayers?: number;
  /** Vision MLP width (default 2 x visionHidden). */
  visionIntermediate?: number;
  /**
   * 8-bit weights the way transformers.js's `*_quantized.onnx` exports are made (onnxruntime
   * dynamic quantization): int8 weights, activations quantized on the fly (DynamicQuantizeLinear),
   * MatMulInteger, then scaled back to float; the embedding table is int8 and dequantized after
   * the lookup. Same file size and weight memory as a real q8 export of these dimensions.
   */
  quantize?: boolean;
}

export type Rand = () => number;

export function weight(g: GraphBuilder, rand: Rand, name: string, dims: number[], scale?: number): string {
  const size = dims.reduce((a, b) => a * b, 1);
  const s = scale ?? 1 / Math.sqrt(dims[0]!);
  return g.floatInit(name, dims, randomWeights(rand, size, s));
}

/** x @ W for a [in, out] weight: float MatMul, or the dynamic-quantization pattern. `output` names the result (a graph output). */
export function linear(
  g: GraphBuilder,
  rand: Rand,
  x: string,
  name: string,
  dims: [number, number],
  scale: number | undefined,
  quantize: boolean | undefined,
  output?: string,
): string {
  const outs = output ? [output] : undefined;
  if (!quantize) return g.op('MatMul', [x, weight(g, rand, name, dims, scale)], {}, outs);
  const w = int8Weight(g, rand, name, dims, scale ?? 1 / Math.sqrt(dims[0]));
  const [xq, xScale, xZero] = [g.tmp('xq'), g.tmp('xs'), g.tmp('xz')];
  g.op('DynamicQuantizeLinear', [x], {}, [xq, xScale, xZero]);
  const acc = g.op('MatMulInteger', [xq, w.q, xZero, w.zero]);
  return g.op('Mul', [g.op('Cast', [acc], { to: FLOAT }), g.op('Mul', [xScale, w.scale])], {}, outs);
}

/** Uniform int8 weights whose dequantized values span [-scale, scale], as a float weight would. */
function int8Weight(g: GraphBuilder, rand: Rand, name: string, dims: number[], scale: number) {
  const size = dims.reduce((a, b) => a * b, 1);
  const q = new Int8Array(size);
  for (let i = 0; i < size; i++) q[i] = Math.round((rand() * 2 - 1) * 127);
  return {
    q: g.rawInit(`${name}_quantized`, INT8, dims, new Uint8Array(q.buffer)),
    scale: g.scalar(scale / 127),
    zero: g.rawInit(`${name}_zero_point`, INT8, [], Uint8Array.of(0)),
  };
}

export function ones(g: GraphBuilder, name: string, n: number): string {
  return g.floatInit(name, [n], new Float32Array(n).fill(1));
}

export function rmsNorm(g: GraphBuilder, x: string, w: string, eps: number): string {
  const sq = g.op('Mul', [x, x]);
  const mean = g.op('ReduceMean', [sq], { axes: [-1], keepdims: 1 });
  const denom = g.op('Sqrt', [g.op('Add', [mean, g.scalar(eps)])]);
  return g.op('Mul', [g.op('Div', [x, denom]), w]);
}

/** [B, S, H] -> [B, heads, S, headDim] */
export function splitHeads(g: GraphBuilder, x: string, heads: number, headDim: number): string {
  const r = g.op('Reshape', [x, g.ints([0, 0, heads, headDim])]);
  return g.op('Transpose', [r], { perm: [0, 2, 1, 3] });
}

/** [B, heads, S, headDim] -> [B, S, H] */
export function mergeHeads(g: GraphBuilder, x: string, hidden: number): string {
  const t = g.op('Transpose', [x], { perm: [0, 2, 1, 3] });
  return g.op('Reshape', [t, g.ints([0, 0, hidden])]);
}

export function buildEmbedTokens(dims: Pick<TinyDims, 'vocabSize' | 'hidden' | 'quantize'>, rand: Rand): Uint8Array {
  const g = new GraphBuilder('embed_tokens');
  const ids = g.input('input_ids', INT64, ['batch_size', 'sequence_length']);
  if (dims.quantize) {
    const t = int8Weight(g, rand, 'embed_tokens.weight', [dims.vocabSize, dims.hidden], 1);
    g.op('DequantizeLinear', [g.op('Gather', [t.q, ids], { axis: 0 }), t.scale, t.zero], {}, ['inputs_embeds']);
  } else {
    const table = weight(g, rand, 'embed_tokens.weight', [dims.vocabSize, dims.hidden], 1);
    g.op('Gather', [table, ids], { axis: 0 }, ['inputs_embeds']);
  }
  g.output('inputs_embeds', FLOAT, ['batch_size', 'sequence_length', dims.hidden]);
  return g.encode();
}

export function buildVisionEncoder(dims: TinyDims, rand: Rand): Uint8Array {
  const g = new GraphBuilder('vision_encoder');
  const { imageSize: S, patchSize: P, visionHidden: D, visionHeads: VH, scaleFactor: F, hidden } = dims;
  const grid = S / P;
  const patches = grid * grid;
  const tokensOut = patches / (F * F);
  const pix = g.input('pixel_values', FLOAT, ['batch_size', 'num_images', 3, S, S]);
  const pmask = g.input('pixel_attention_mask', BOOL, ['batch_size', 'num_images', S, S]);

  // Fold batch and images together: every image (or image tile) is encoded independently.
  const flat = g.op('Reshape', [pix, g.ints([-1, 3, S, S])]);
  // Padding tiles (mask all false) must not leak values: zero their pixels before encoding.
  const keep = g.op('Cast', [g.op('Reshape', [pmask, g.ints([-1, 1, S, S])])], { to: FLOAT });
  const masked = g.op('Mul', [flat, keep]);
  const conv = g.op(
    'Conv',
    [
      masked,
      weight(g, rand, 'patch.weight', [D, 3, P, P], 1 / Math.sqrt(3 * P * P)),
      g.floatInit('patch.bias', [D], new Float32Array(D)),
    ],
    {
      kernel_shape: [P, P],
      strides: [P, P],
    },
  );
  const seq = g.op('Transpose', [g.op('Reshape', [conv, g.ints([0, D, patches])])], { perm: [0, 2, 1] });
  let h = g.op('Add', [seq, weight(g, rand, 'pos.weight', [patches, D], 0.02)]);

  // Pre-norm ViT blocks.
  const VL = dims.visionLayers ?? 1;
  const VI = dims.visionIntermediate ?? 2 * D;
  const qz = dims.quantize;
  for (let l = 0; l < VL; l++) {
    const p = VL === 1 ? '' : `b${l}.`;
    const ln1 = g.op(
      'LayerNormalization',
      [h, ones(g, `${p}ln1.w`, D), g.floatInit(`${p}ln1.b`, [D], new Float32Array(D))],
      { axis: -1, epsilon: { f: 1e-6 } },
    );
    const q = splitHeads(g, linear(g, rand, ln1, `${p}v.q`, [D, D], undefined, qz), VH, D / VH);
    const k = splitHeads(g, linear(g, rand, ln1, `${p}v.k`, [D, D], undefined, qz), VH, D / VH);
    const v = splitHeads(g, linear(g, rand, ln1, `${p}v.v`, [D, D], undefined, qz), VH, D / VH);
    const scores = g.op('Mul', [
      g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]),
      g.scalar(1 / Math.sqrt(D / VH)),
    ]);
    const attn = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
    h = g.op('Add', [h, linear(g, rand, mergeHeads(g, attn, D), `${p}v.o`, [D, D], undefined, qz)]);
    const ln2 = g.op(
      'LayerNormalization',
      [h, ones(g, `${p}ln2.w`, D), g.floatInit(`${p}ln2.b`, [D], new Float32Array(D))],
      { axis: -1, epsilon: { f: 1e-6 } },
    );
    const up = linear(g, rand, ln2, `${p}v.fc1`, [D, VI], undefined, qz);
    const act = g.op('Mul', [up, g.op('Sigmoid', [g.op('Mul', [up, g.scalar(1.702)])])]); // quick GELU
    h = g.op('Add', [h, linear(g, rand, act, `${p}v.fc2`, [VI, D], undefined, qz)]);
  }
  h = g.op('LayerNormalization', [h, ones(g, 'post.w', D), g.floatInit('post.b', [D], new Float32Array(D))], {
    axis: -1,
    epsilon: { f: 1e-6 },
  });

  // Idefics3 connector: pixel shuffle (each FxF block of neighbouring patches becomes one token), then a projection.
  const g6 = g.op('Reshape', [h, g.ints([-1, grid / F, F, grid / F, F, D])]);
  const shuffled = g.op('Transpose', [g6], { perm: [0, 1, 3, 2, 4, 5] });
  const merged = g.op('Reshape', [shuffled, g.ints([-1, tokensOut, F * F * D])]);
  linear(g, rand, merged, 'connector.proj', [F * F * D, hidden], undefined, qz, 'image_features');
  g.output('image_features', FLOAT, ['num_tiles', tokensOut, hidden]);
  return g.encode();
}

/**
 * [B, 1, S, total] booleans: key j is visible to query i when j <= past + i (the cache counts:
 * query i sits at absolute position past + i) and the attention mask keeps j.
 */
export function causalPaddingMask(g: GraphBuilder, emb: string, mask: string): string {
  const seqLen = g.op('Shape', [emb], { start: 1, end: 2 });
  const totalLen = g.op('Shape', [mask], { start: 1, end: 2 });
  const pastLen = g.op('Sub', [totalLen, seqLen]);
  const zero = g.int64Init('zero', [0], []);
  const one = g.int64Init('one', [1], []);
  const qpos = g.op('Range', [g.op('Squeeze', [pastLen, g.ints([0])]), g.op('Squeeze', [totalLen, g.ints([0])]), one]);
  const kpos = g.op('Range', [zero, g.op('Squeeze', [totalLen, g.ints([0])]), one]);
  const causal = g.op('LessOrEqual', [kpos, g.op('Unsqueeze', [qpos, g.ints([1])])]);
  const padMask = g.op('Unsqueeze', [g.op('Cast', [mask], { to: BOOL }), g.ints([1, 2])]);
  return g.op('And', [causal, padMask]);
}

export function buildDecoder(dims: TinyDims, rand: Rand): Uint8Array {
  const g = new GraphBuilder('decoder_model_merged');
  const { hidden: H, heads: NH, headDim: HD, layers, intermediate: I, vocabSize: V } = dims;
  const qz = dims.quantize;
  const emb = g.input('inputs_embeds', FLOAT, ['batch_size', 'sequence_length', H]);
  const mask = g.input('attention_mask', INT64, ['batch_size', 'total_sequence_length']);
  const pos = g.input('position_ids', INT64, ['batch_size', 'sequence_length']);
  const past: [string, string][] = [];
  for (let l = 0; l < layers; l++) {
    past.push([
      g.input(`past_key_values.${l}.key`, FLOAT, ['batch_size', NH, 'past_sequence_length', HD]),
      g.input(`past_key_values.${l}.value`, FLOAT, ['batch_size', NH, 'past_sequence_length', HD]),
    ]);
  }

  const allowed = causalPaddingMask(g, emb, mask);
  const negBig = g.scalar(-1e9);

  // Rotary embedding tables from position_ids.
  const invFreq = new Float32Array(HD / 2);
  for (let i = 0; i < HD / 2; i++) invFreq[i] = 1 / Math.pow(dims.ropeTheta, (2 * i) / HD);
  const posF = g.op('Unsqueeze', [g.op('Cast', [pos], { to: FLOAT }), g.ints([2])]);
  const freqs = g.op('Mul', [posF, g.floatInit('inv_freq', [HD / 2], invFreq)]);
  const embAngles = g.op('Concat', [freqs, freqs], { axis: -1 });
  const cos = g.op('Unsqueeze', [g.op('Cos', [embAngles]), g.ints([1])]);
  const sin = g.op('Unsqueeze', [g.op('Sin', [embAngles]), g.ints([1])]);
  const halfA = g.ints([0]);
  const halfB = g.ints([HD / 2]);
  const full = g.ints([HD]);
  const axis3 = g.ints([3]);
  const rope = (x: string): string => {
    const x1 = g.op('Slice', [x, halfA, halfB, axis3]);
    const x2 = g.op('Slice', [x, halfB, full, axis3]);
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: 3 });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };

  let h = emb;
  for (let l = 0; l < layers; l++) {
    const xn = rmsNorm(g, h, ones(g, `l${l}.in_norm`, H), dims.rmsEps);
    const q = rope(splitHeads(g, linear(g, rand, xn, `l${l}.q`, [H, NH * HD], undefined, qz), NH, HD));
    const k = rope(splitHeads(g, linear(g, rand, xn, `l${l}.k`, [H, NH * HD], undefined, qz), NH, HD));
    const v = splitHeads(g, linear(g, rand, xn, `l${l}.v`, [H, NH * HD], undefined, qz), NH, HD);
    const kAll = g.op('Concat', [past[l]![0], k], { axis: 2 }, [`present.${l}.key`]);
    const vAll = g.op('Concat', [past[l]![1], v], { axis: 2 }, [`present.${l}.value`]);
    const scores = g.op('Mul', [
      g.op('MatMul', [q, g.op('Transpose', [kAll], { perm: [0, 1, 3, 2] })]),
      g.scalar(1 / Math.sqrt(HD)),
    ]);
    const probs = g.op('Softmax', [g.op('Where', [allowed, scores, negBig])], { axis: -1 });
    const attn = mergeHeads(g, g.op('MatMul', [probs, vAll]), NH * HD);
    h = g.op('Add', [h, linear(g, rand, attn, `l${l}.o`, [NH * HD, H], undefined, qz)]);
    const xn2 = rmsNorm(g, h, ones(g, `l${l}.post_norm`, H), dims.rmsEps);
    const gate = linear(g, rand, xn2, `l${l}.gate`, [H, I], undefined, qz);
    const up = linear(g, rand, xn2, `l${l}.up`, [H, I], undefined, qz);
    const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]); // SwiGLU
    h = g.op('Add', [h, linear(g, rand, act, `l${l}.down`, [I, H], undefined, qz)]);
    g.output(`present.${l}.key`, FLOAT, ['batch_size', NH, 'total_sequence_length', HD]);
    g.output(`present.${l}.value`, FLOAT, ['batch_size', NH, 'total_sequence_length', HD]);
  }
  const final = rmsNorm(g, h, ones(g, 'final_norm', H), dims.rmsEps);
  // Larger LM-head scale gives peaked distributions, so greedy and sampled outputs differ visibly.
  linear(g, rand, final, 'lm_head', [H, V], 4 / Math.sqrt(H), qz, 'logits');
  g.output('logits', FLOAT, ['batch_size', 'sequence_length', V]);
  return g.encode();
}
