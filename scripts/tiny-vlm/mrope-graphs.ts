/**
 * The ONNX graphs of the Qwen2-VL family as transformers.js runs them (Qwen2.5-VL, and GLM-V /
 * GLM-OCR, which transformers.js builds on it): a vision encoder over the processor's flattened
 * patches and their grid (`image_grid_thw`), and a decoder whose `position_ids` are 3-D
 * (temporal, height, width: [3, batch, seq]) and turned into multimodal rotary embeddings by
 * `mrope_section`. The embedding graph is the one in graphs.ts.
 *
 * Real operations with random weights. Simplified where transformers.js never looks: the vision
 * tower has one block and no 2-D rotary, the MLPs are plain SwiGLU.
 */
import { FLOAT, GraphBuilder, INT64 } from './onnx-builder.js';
import { causalPaddingMask, linear, mergeHeads, ones, rmsNorm, splitHeads, weight, type Rand } from './graphs.js';

export interface MropeDims {
  vocabSize: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  layers: number;
  intermediate: number;
  ropeTheta: number;
  rmsEps: number;
  /** Rotary frequencies given to the temporal, height and width positions; sums to headDim / 2. */
  mropeSection: [number, number, number];
  /**
   * GLM-V's decoder: rotary over interleaved pairs, and a norm after attention and after the MLP
   * (four per layer). Qwen2.5-VL: rotate-half rotary, two norms, biased q/k/v.
   */
  glm: boolean;
  visionHidden: number;
  visionHeads: number;
  visionLayers: number;
  visionIntermediate: number;
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  quantize?: boolean;
}

/**
 * The test fixtures' sizes (two decoder layers 64 wide with grouped-query attention, one vision
 * block 32 wide) around the family's real patching: 14 px patches, temporal patch 2, 2x2 merge.
 */
export function tinyMropeDims(vocabSize: number, own: Pick<MropeDims, 'glm' | 'ropeTheta' | 'rmsEps'>): MropeDims {
  return {
    vocabSize,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    layers: 2,
    intermediate: 128,
    mropeSection: [2, 3, 3],
    visionHidden: 32,
    visionHeads: 2,
    visionLayers: 1,
    visionIntermediate: 64,
    patchSize: 14,
    temporalPatchSize: 2,
    mergeSize: 2,
    ...own,
  };
}

/** The decoder's sizes as config.json's text_config names them (in the hub files' key order). */
export function textSizes(d: MropeDims): Record<string, number | string> {
  return {
    vocab_size: d.vocabSize,
    hidden_size: d.hidden,
    intermediate_size: d.intermediate,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.kvHeads,
    head_dim: d.headDim,
    hidden_act: 'silu',
  };
}

/**
 * pixel_values [num_patches, 3 * temporal * patch * patch] and the grid of each image
 * ([num_images, 3]: t, h, w in patches) -> image_features [num_patches / merge^2, hidden].
 * Patches attend only within their own image (the real tower's cu_seqlens); each run of
 * merge^2 consecutive patches (the processor orders them so) becomes one token.
 */
export function buildPatchVisionEncoder(d: MropeDims, rand: Rand, gridName: string): Uint8Array {
  const g = new GraphBuilder('vision_encoder');
  const D = d.visionHidden;
  const K = 3 * d.temporalPatchSize * d.patchSize * d.patchSize;
  const M2 = d.mergeSize * d.mergeSize;
  const qz = d.quantize;
  const pix = g.input('pixel_values', FLOAT, ['num_patches', K]);
  const grid = g.input(gridName, INT64, ['num_images', 3]);

  // Which image each patch belongs to: the count of images that end at or before it.
  const sizes = g.op('ReduceProd', [g.op('Cast', [grid], { to: FLOAT })], { axes: [1], keepdims: 0 });
  const ends = g.op('CumSum', [sizes, g.int64Init('axis0', [0], [])]);
  const n = g.op('Cast', [g.op('Squeeze', [g.op('Shape', [pix], { start: 0, end: 1 }), g.ints([0])])], { to: FLOAT });
  const idx = g.op('Range', [g.scalar(0), n, g.scalar(1)]);
  const past = g.op(
    'Cast',
    [g.op('GreaterOrEqual', [g.op('Unsqueeze', [idx, g.ints([1])]), g.op('Unsqueeze', [ends, g.ints([0])])])],
    { to: FLOAT },
  );
  const image = g.op('ReduceSum', [past, g.ints([1])], { keepdims: 0 });
  const sameImage = g.op('Equal', [g.op('Unsqueeze', [image, g.ints([1])]), g.op('Unsqueeze', [image, g.ints([0])])]);

  let h = g.op('Unsqueeze', [linear(g, rand, pix, 'patch_embed', [K, D], 1 / Math.sqrt(K), qz), g.ints([0])]);
  for (let l = 0; l < d.visionLayers; l++) {
    const p = `vb${l}.`;
    const xn = rmsNorm(g, h, ones(g, `${p}norm1`, D), d.rmsEps);
    const hd = D / d.visionHeads;
    const q = splitHeads(g, linear(g, rand, xn, `${p}q`, [D, D], undefined, qz), d.visionHeads, hd);
    const k = splitHeads(g, linear(g, rand, xn, `${p}k`, [D, D], undefined, qz), d.visionHeads, hd);
    const v = splitHeads(g, linear(g, rand, xn, `${p}v`, [D, D], undefined, qz), d.visionHeads, hd);
    const scores = g.op('Mul', [
      g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]),
      g.scalar(1 / Math.sqrt(hd)),
    ]);
    const probs = g.op('Softmax', [g.op('Where', [sameImage, scores, g.scalar(-1e9)])], { axis: -1 });
    h = g.op('Add', [h, linear(g, rand, mergeHeads(g, g.op('MatMul', [probs, v]), D), `${p}o`, [D, D], undefined, qz)]);
    h = g.op('Add', [
      h,
      swiglu(g, rand, rmsNorm(g, h, ones(g, `${p}norm2`, D), d.rmsEps), `${p}mlp`, D, d.visionIntermediate, qz),
    ]);
  }
  const post = rmsNorm(g, h, ones(g, 'post_norm', D), d.rmsEps);
  // Patch merger: merge^2 neighbours side by side, then an MLP into the decoder's width.
  const merged = g.op('Reshape', [post, g.ints([-1, M2 * D])]);
  const up = linear(g, rand, merged, 'merger.fc1', [M2 * D, M2 * D], undefined, qz);
  const act = g.op('Mul', [up, g.op('Sigmoid', [g.op('Mul', [up, g.scalar(1.702)])])]);
  linear(g, rand, act, 'merger.fc2', [M2 * D, d.hidden], undefined, qz, 'image_features');
  g.output('image_features', FLOAT, ['num_image_tokens', d.hidden]);
  return g.encode();
}

function swiglu(
  g: GraphBuilder,
  rand: Rand,
  x: string,
  name: string,
  width: number,
  inner: number,
  qz: boolean | undefined,
): string {
  const gate = linear(g, rand, x, `${name}.gate`, [width, inner], undefined, qz);
  const up = linear(g, rand, x, `${name}.up`, [width, inner], undefined, qz);
  return linear(
    g,
    rand,
    g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]),
    `${name}.down`,
    [inner, width],
    undefined,
    qz,
  );
}

/** Rotary angles [B, S, headDim / 2] from 3-D positions [3, B, S]: each section reads its own axis. */
function mropeAngles(g: GraphBuilder, d: MropeDims, pos: string): string {
  const half = d.headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.pow(d.ropeTheta, (2 * i) / d.headDim);
  const freqs = g.op('Mul', [
    g.op('Unsqueeze', [g.op('Cast', [pos], { to: FLOAT }), g.ints([3])]),
    g.floatInit('inv_freq', [half], invFreq),
  ]);
  const [s0, s1] = d.mropeSection;
  const bounds = [0, s0, s0 + s1, half];
  const parts = [0, 1, 2].map((axis) =>
    g.op('Slice', [freqs, g.ints([axis, bounds[axis]]), g.ints([axis + 1, bounds[axis + 1]]), g.ints([0, 3])]),
  );
  return g.op('Squeeze', [g.op('Concat', parts, { axis: 3 }), g.ints([0])]);
}

export function buildMropeDecoder(d: MropeDims, rand: Rand): Uint8Array {
  const g = new GraphBuilder('decoder_model_merged');
  const { hidden: H, heads: NH, kvHeads: KV, headDim: HD, layers, intermediate: I, vocabSize: V } = d;
  const qz = d.quantize;
  const emb = g.input('inputs_embeds', FLOAT, ['batch_size', 'sequence_length', H]);
  const mask = g.input('attention_mask', INT64, ['batch_size', 'total_sequence_length']);
  const pos = g.input('position_ids', INT64, [3, 'batch_size', 'sequence_length']);
  const past: [string, string][] = [];
  for (let l = 0; l < layers; l++) {
    past.push([
      g.input(`past_key_values.${l}.key`, FLOAT, ['batch_size', KV, 'past_sequence_length', HD]),
      g.input(`past_key_values.${l}.value`, FLOAT, ['batch_size', KV, 'past_sequence_length', HD]),
    ]);
  }
  const allowed = causalPaddingMask(g, emb, mask);

  const angles = mropeAngles(g, d, pos);
  const pairShape = g.ints([0, 0, 0, HD / 2, 2]);
  const full = g.ints([0, 0, 0, HD]);
  // GLM-V: each angle covers one adjacent pair (x0, x1); Qwen: the two halves of the head.
  const table = d.glm
    ? g.op('Reshape', [
        g.op('Concat', [g.op('Unsqueeze', [angles, g.ints([3])]), g.op('Unsqueeze', [angles, g.ints([3])])], {
          axis: 3,
        }),
        g.ints([0, 0, HD]),
      ])
    : g.op('Concat', [angles, angles], { axis: -1 });
  const cos = g.op('Unsqueeze', [g.op('Cos', [table]), g.ints([1])]);
  const sin = g.op('Unsqueeze', [g.op('Sin', [table]), g.ints([1])]);
  const rope = (x: string): string => {
    let rotated: string;
    if (d.glm) {
      const pairs = g.op('Reshape', [x, pairShape]);
      const even = g.op('Slice', [pairs, g.ints([0]), g.ints([1]), g.ints([4])]);
      const odd = g.op('Slice', [pairs, g.ints([1]), g.ints([2]), g.ints([4])]);
      rotated = g.op('Reshape', [g.op('Concat', [g.op('Neg', [odd]), even], { axis: 4 }), full]);
    } else {
      const x1 = g.op('Slice', [x, g.ints([0]), g.ints([HD / 2]), g.ints([3])]);
      const x2 = g.op('Slice', [x, g.ints([HD / 2]), g.ints([HD]), g.ints([3])]);
      rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: 3 });
    }
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };
  const proj = (x: string, name: string, out: number): string => {
    const y = linear(g, rand, x, name, [H, out], undefined, qz);
    return d.glm ? y : g.op('Add', [y, weight(g, rand, `${name}.bias`, [out], 0.02)]);
  };
  // Grouped-query attention: each key/value head serves heads / kvHeads query heads.
  const repeatKv = (x: string): string =>
    KV === NH
      ? x
      : g.op('Reshape', [
          g.op('Tile', [g.op('Unsqueeze', [x, g.ints([2])]), g.ints([1, 1, NH / KV, 1, 1])]),
          g.ints([0, NH, -1, HD]),
        ]);

  let h = emb;
  for (let l = 0; l < layers; l++) {
    const xn = rmsNorm(g, h, ones(g, `l${l}.in_norm`, H), d.rmsEps);
    const q = rope(splitHeads(g, proj(xn, `l${l}.q`, NH * HD), NH, HD));
    const k = rope(splitHeads(g, proj(xn, `l${l}.k`, KV * HD), KV, HD));
    const v = splitHeads(g, proj(xn, `l${l}.v`, KV * HD), KV, HD);
    const kAll = g.op('Concat', [past[l][0], k], { axis: 2 }, [`present.${l}.key`]);
    const vAll = g.op('Concat', [past[l][1], v], { axis: 2 }, [`present.${l}.value`]);
    const scores = g.op('Mul', [
      g.op('MatMul', [q, g.op('Transpose', [repeatKv(kAll)], { perm: [0, 1, 3, 2] })]),
      g.scalar(1 / Math.sqrt(HD)),
    ]);
    const probs = g.op('Softmax', [g.op('Where', [allowed, scores, g.scalar(-1e9)])], { axis: -1 });
    let attn = linear(
      g,
      rand,
      mergeHeads(g, g.op('MatMul', [probs, repeatKv(vAll)]), NH * HD),
      `l${l}.o`,
      [NH * HD, H],
      undefined,
      qz,
    );
    if (d.glm) attn = rmsNorm(g, attn, ones(g, `l${l}.post_attn_norm`, H), d.rmsEps);
    h = g.op('Add', [h, attn]);
    let mlp = swiglu(g, rand, rmsNorm(g, h, ones(g, `l${l}.mlp_norm`, H), d.rmsEps), `l${l}.mlp`, H, I, qz);
    if (d.glm) mlp = rmsNorm(g, mlp, ones(g, `l${l}.post_mlp_norm`, H), d.rmsEps);
    h = g.op('Add', [h, mlp]);
    g.output(`present.${l}.key`, FLOAT, ['batch_size', KV, 'total_sequence_length', HD]);
    g.output(`present.${l}.value`, FLOAT, ['batch_size', KV, 'total_sequence_length', HD]);
  }
  const final = rmsNorm(g, h, ones(g, 'final_norm', H), d.rmsEps);
  linear(g, rand, final, 'lm_head', [H, V], 4 / Math.sqrt(H), qz, 'logits');
  g.output('logits', FLOAT, ['batch_size', 'sequence_length', V]);
  return g.encode();
}
