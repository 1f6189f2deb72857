#!/usr/bin/env -S node --import tsx
/**
 * Writes fixtures/tiny-vlm/: a tiny random-weight model of a real architecture that
 * transformers.js supports for image-text-to-text (Idefics3, the architecture of SmolVLM):
 * config, tokenizer, processor configs, chat template, and ONNX graphs for the vision encoder,
 * token embedding and decoder with KV cache. Deterministic: re-running gives identical files.
 *
 * Usage: npm run make-tiny-vlm [-- <output dir>]
 *
 * `--arch glm-ocr` writes fixtures/tiny-glm-ocr instead: GLM-OCR's architecture (see
 * tiny-vlm/glm-ocr.ts); with `--shape glm-ocr`, GLM-OCR's real sizes in 8-bit (about 1 GB, not committed).
 * `--arch qwen2.5-vl` writes Qwen2.5-VL's architecture (tiny-vlm/qwen2-5-vl.ts) to .cache/tiny-qwen2.5-vl:
 * not committed, the tests write their own copy.
 *
 * `--shape smolvlm-256m` writes instead a model with HuggingFaceTB/SmolVLM-256M-Instruct's sizes
 * (12-block 768-wide vision encoder on 512 px tiles, 30-layer 576-wide decoder, 49,280-token
 * vocabulary, its image processor settings) and 8-bit weights laid out as its default
 * `*_quantized.onnx` files: random weights, but the real model's compute and memory, for
 * measuring speed and memory where the real one cannot be downloaded. About 250 MB; not committed.
 * `--shape tiny-q8` writes the fixture's sizes in that 8-bit layout (for tests of quantized loading).
 * Its attention keeps one key/value head per query head (the real decoder shares 3 among 9),
 * so its KV cache is 3x the real one's.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeJson } from './tiny-vlm/files.js';
import { writeGlmOcr } from './tiny-vlm/glm-ocr.js';
import { writeQwen25Vl } from './tiny-vlm/qwen2-5-vl.js';
import { buildDecoder, buildEmbedTokens, buildVisionEncoder, type TinyDims } from './tiny-vlm/graphs.js';
import { seededRandom } from './tiny-vlm/onnx-builder.js';
import { buildTokenizer } from './tiny-vlm/tokenizer.js';

const { values: opts, positionals } = parseArgs({
  options: { shape: { type: 'string', default: 'tiny' }, arch: { type: 'string', default: 'idefics3' } },
  allowPositionals: true,
});
const ARCHS = ['idefics3', 'glm-ocr', 'qwen2.5-vl'];
if (!ARCHS.includes(opts.arch!)) throw new Error(`--arch must be one of ${ARCHS.join(', ')}, not ${opts.arch}`);
if (opts.arch === 'qwen2.5-vl') {
  if (opts.shape !== 'tiny') throw new Error(`--arch qwen2.5-vl has only --shape tiny, not ${opts.shape}`);
  console.log(writeQwen25Vl(resolve(positionals[0] ?? new URL('../.cache/tiny-qwen2.5-vl', import.meta.url).pathname)));
  process.exit(0);
}
if (opts.arch === 'glm-ocr') {
  if (!['tiny', 'glm-ocr'].includes(opts.shape!))
    throw new Error(`--shape for --arch glm-ocr must be tiny or glm-ocr, not ${opts.shape}`);
  const dir = resolve(positionals[0] ?? new URL('../fixtures/tiny-glm-ocr', import.meta.url).pathname);
  console.log(writeGlmOcr(dir, opts.shape === 'glm-ocr'));
  process.exit(0);
}
const SHAPES = ['tiny', 'tiny-q8', 'smolvlm-256m'];
if (!SHAPES.includes(opts.shape!)) throw new Error(`--shape must be one of ${SHAPES.join(', ')}, not ${opts.shape}`);
const real = opts.shape === 'smolvlm-256m';
// tiny-q8: the fixture's sizes with the 8-bit layout, so tests can load a quantized export cheaply.
const quantized = real || opts.shape === 'tiny-q8';
const out = resolve(positionals[0] ?? new URL('../fixtures/tiny-vlm', import.meta.url).pathname);
mkdirSync(join(out, 'onnx'), { recursive: true });

const tok = buildTokenizer(240, real ? 49280 : 0);
const dims: TinyDims = real
  ? {
      vocabSize: tok.vocabSize,
      hidden: 576,
      heads: 9,
      headDim: 64,
      layers: 30,
      intermediate: 1536,
      visionHidden: 768,
      visionHeads: 12,
      visionLayers: 12,
      visionIntermediate: 3072,
      imageSize: 512,
      patchSize: 16,
      scaleFactor: 4,
      ropeTheta: 100000,
      rmsEps: 1e-5,
      quantize: true,
    }
  : {
      vocabSize: tok.vocabSize,
      hidden: 64,
      heads: 4,
      headDim: 16,
      layers: 2,
      intermediate: 128,
      visionHidden: 32,
      visionHeads: 2,
      imageSize: 32,
      patchSize: 8,
      scaleFactor: 2,
      ropeTheta: 10000,
      rmsEps: 1e-5,
      ...(quantized ? { quantize: true } : {}),
    };
// Longest edge the processor resizes to before cutting 512 px tiles (SmolVLM: 4 tiles across).
const resizeLongestEdge = real ? 4 * dims.imageSize : dims.imageSize * 2;
const suffix = quantized ? '_quantized' : '';
const imageSeqLen = (dims.imageSize / dims.patchSize) ** 2 / dims.scaleFactor ** 2;
const id = tok.specialIds;
const eos = id['<end_of_utterance>']!;

// SmolVLM's own chat template: roles capitalised, images as <image>, turns end with <end_of_utterance>.
const chatTemplate =
  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}" +
  "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

const json = (name: string, value: unknown): void => writeJson(out, name, value);

json('config.json', {
  architectures: ['Idefics3ForConditionalGeneration'],
  model_type: 'idefics3',
  image_token_id: id['<image>'],
  scale_factor: dims.scaleFactor,
  bos_token_id: id['<|im_start|>'],
  eos_token_id: eos,
  pad_token_id: id['<|im_end|>'],
  vocab_size: dims.vocabSize,
  tie_word_embeddings: false,
  text_config: {
    model_type: 'llama',
    vocab_size: dims.vocabSize,
    hidden_size: dims.hidden,
    intermediate_size: dims.intermediate,
    num_hidden_layers: dims.layers,
    num_attention_heads: dims.heads,
    num_key_value_heads: dims.heads,
    head_dim: dims.headDim,
    max_position_embeddings: real ? 8192 : 2048,
    rms_norm_eps: dims.rmsEps,
    rope_theta: dims.ropeTheta,
    bos_token_id: id['<|im_start|>'],
    eos_token_id: eos,
    pad_token_id: id['<|im_end|>'],
  },
  vision_config: {
    model_type: 'idefics3_vision',
    hidden_size: dims.visionHidden,
    intermediate_size: dims.visionHidden * 2,
    num_attention_heads: dims.visionHeads,
    num_hidden_layers: 1,
    image_size: dims.imageSize,
    patch_size: dims.patchSize,
  },
  // Tells loaders (and glimpse's --dtype auto) which files exist.
  'transformers.js_config': { dtype: quantized ? 'q8' : 'fp32' },
  _comment: 'Random weights: glimpse test fixture written by scripts/make-tiny-vlm.ts. Output is meaningless text.',
});
json('generation_config.json', {
  bos_token_id: id['<|im_start|>'],
  eos_token_id: [eos, id['<|endoftext|>']],
  pad_token_id: id['<|im_end|>'],
});
json('preprocessor_config.json', {
  image_processor_type: 'Idefics3ImageProcessor',
  processor_class: 'Idefics3Processor',
  do_convert_rgb: true,
  do_resize: true,
  size: { longest_edge: resizeLongestEdge },
  resample: 1,
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: [0.5, 0.5, 0.5],
  image_std: [0.5, 0.5, 0.5],
  do_pad: true,
  do_image_splitting: true,
  max_image_size: { longest_edge: dims.imageSize },
});
json('processor_config.json', { image_seq_len: imageSeqLen, processor_class: 'Idefics3Processor' });
json('special_tokens_map.json', {
  bos_token: '<|im_start|>',
  eos_token: '<end_of_utterance>',
  pad_token: '<|im_end|>',
  unk_token: '<|endoftext|>',
  additional_special_tokens: ['<fake_token_around_image>', '<image>', '<end_of_utterance>'],
});
json('tokenizer_config.json', {
  add_prefix_space: false,
  bos_token: '<|im_start|>',
  eos_token: '<end_of_utterance>',
  pad_token: '<|im_end|>',
  unk_token: '<|endoftext|>',
  clean_up_tokenization_spaces: false,
  model_max_length: 2048,
  tokenizer_class: 'GPT2Tokenizer',
  processor_class: 'Idefics3Processor',
  additional_special_tokens: ['<fake_token_around_image>', '<image>', '<end_of_utterance>'],
  chat_template: chatTemplate,
});
json('tokenizer.json', tok.tokenizerJson);

// Separate streams per graph so changing one graph's size does not reshuffle another's weights.
writeFileSync(join(out, 'onnx', `vision_encoder${suffix}.onnx`), buildVisionEncoder(dims, seededRandom(1)));
writeFileSync(join(out, 'onnx', `embed_tokens${suffix}.onnx`), buildEmbedTokens(dims, seededRandom(2)));
writeFileSync(join(out, 'onnx', `decoder_model_merged${suffix}.onnx`), buildDecoder(dims, seededRandom(3)));
writeFileSync(
  join(out, 'README.md'),
  `# ${real ? 'SmolVLM-256M-shaped random model (benchmarks)' : 'tiny-vlm (test fixture)'}\n\nRandom-weight Idefics3/SmolVLM-architecture model written by \`npm run make-tiny-vlm\`\n` +
    `(scripts/make-tiny-vlm.ts). Vocabulary ${dims.vocabSize} tokens (byte-level BPE + SmolVLM special tokens),\n` +
    (real
      ? `decoder ${dims.layers} layers x ${dims.hidden} hidden, vision ${dims.visionLayers} blocks x ${dims.visionHidden}, tiles ${dims.imageSize}px, ${imageSeqLen} image tokens per tile, 8-bit weights.\n`
      : `decoder ${dims.layers} layers x ${dims.hidden} hidden, vision tiles ${dims.imageSize}px, ${imageSeqLen} image tokens per tile.\n`) +
    `It exercises the real loading, preprocessing, vision-encoder and cached decoding path; its text is meaningless.\n`,
);
console.log(`wrote ${out} (vocab ${dims.vocabSize}, ${imageSeqLen} image tokens per tile)`);
