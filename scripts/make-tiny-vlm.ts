#!/usr/bin/env -S node --import tsx
/**
 * Writes fixtures/tiny-vlm/: a tiny random-weight model of a real architecture that
 * transformers.js supports for image-text-to-text (Idefics3, the architecture of SmolVLM):
 * config, tokenizer, processor configs, chat template, and ONNX graphs for the vision encoder,
 * token embedding and decoder with KV cache. Deterministic: re-running gives identical files.
 *
 * Usage: npm run make-tiny-vlm [-- <output dir>]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildDecoder, buildEmbedTokens, buildVisionEncoder, type TinyDims } from './tiny-vlm/graphs.js';
import { seededRandom } from './tiny-vlm/onnx-builder.js';
import { buildTokenizer } from './tiny-vlm/tokenizer.js';

const out = resolve(process.argv[2] ?? new URL('../fixtures/tiny-vlm', import.meta.url).pathname);
mkdirSync(join(out, 'onnx'), { recursive: true });

const tok = buildTokenizer(240);
const dims: TinyDims = {
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
};
const imageSeqLen = ((dims.imageSize / dims.patchSize) ** 2) / dims.scaleFactor ** 2;
const id = tok.specialIds;
const eos = id['<end_of_utterance>']!;

// SmolVLM's own chat template: roles capitalised, images as <image>, turns end with <end_of_utterance>.
const chatTemplate =
  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}" +
  "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

const json = (name: string, value: unknown): void => writeFileSync(join(out, name), JSON.stringify(value, null, 2) + '\n');

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
    max_position_embeddings: 2048,
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
  // Full-precision graphs only: tells loaders (and glimpse's --dtype auto) which files exist.
  'transformers.js_config': { dtype: 'fp32' },
  _comment: 'Random weights: glimpse test fixture written by scripts/make-tiny-vlm.ts. Output is meaningless text.',
});
json('generation_config.json', { bos_token_id: id['<|im_start|>'], eos_token_id: [eos, id['<|endoftext|>']], pad_token_id: id['<|im_end|>'] });
json('preprocessor_config.json', {
  image_processor_type: 'Idefics3ImageProcessor',
  processor_class: 'Idefics3Processor',
  do_convert_rgb: true,
  do_resize: true,
  size: { longest_edge: dims.imageSize * 2 },
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
writeFileSync(join(out, 'onnx', 'vision_encoder.onnx'), buildVisionEncoder(dims, seededRandom(1)));
writeFileSync(join(out, 'onnx', 'embed_tokens.onnx'), buildEmbedTokens(dims, seededRandom(2)));
writeFileSync(join(out, 'onnx', 'decoder_model_merged.onnx'), buildDecoder(dims, seededRandom(3)));
writeFileSync(
  join(out, 'README.md'),
  `# tiny-vlm (test fixture)\n\nRandom-weight Idefics3/SmolVLM-architecture model written by \`npm run make-tiny-vlm\`\n` +
    `(scripts/make-tiny-vlm.ts). Vocabulary ${dims.vocabSize} tokens (byte-level BPE + SmolVLM special tokens),\n` +
    `decoder ${dims.layers} layers x ${dims.hidden} hidden, vision tiles ${dims.imageSize}px, ${imageSeqLen} image tokens per tile.\n` +
    `It exercises the real loading, preprocessing, vision-encoder and cached decoding path; its text is meaningless.\n`,
);
console.log(`wrote ${out} (vocab ${dims.vocabSize}, ${imageSeqLen} image tokens per tile)`);
