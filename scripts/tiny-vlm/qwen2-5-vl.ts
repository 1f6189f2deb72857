/**
 * A Qwen2.5-VL model (Qwen2_5_VLForConditionalGeneration with Qwen2_5_VLProcessor and
 * Qwen2VLImageProcessor) laid out as the onnx-community ONNX exports are: config.json
 * (model_type qwen2_5_vl, text and vision sub-configs as transformers.js reads them),
 * generation_config.json, preprocessor_config.json (14 px patches merged 2x2, temporal patch 2,
 * min/max pixels), tokenizer.json and tokenizer_config.json with Qwen2-VL's chat template, and
 * onnx/{vision_encoder,embed_tokens,decoder_model_merged}.onnx whose vision encoder takes
 * `image_grid_thw` (Qwen2-VL's own takes `grid_thw`). Random weights, tiny sizes.
 *
 * What sets it apart from GLM-OCR on the same graphs: images sit between <|vision_start|> and
 * <|vision_end|> (transformers.js finds them by the start token when it builds the 3-D positions),
 * the rotary embedding rotates the two halves of each head, and q/k/v carry biases.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildEmbedTokens } from './graphs.js';
import { writeJson } from './files.js';
import { buildMropeDecoder, buildPatchVisionEncoder, textSizes, tinyMropeDims } from './mrope-graphs.js';
import { seededRandom } from './onnx-builder.js';
import { buildTokenizer } from './tokenizer.js';

/** Qwen2's special tokens in their own order (151,643 onwards in the real vocabulary). */
export const QWEN_SPECIAL_TOKENS = [
  '<|endoftext|>',
  '<|im_start|>',
  '<|im_end|>',
  '<|object_ref_start|>',
  '<|object_ref_end|>',
  '<|box_start|>',
  '<|box_end|>',
  '<|quad_start|>',
  '<|quad_end|>',
  '<|vision_start|>',
  '<|vision_end|>',
  '<|vision_pad|>',
  '<|image_pad|>',
  '<|video_pad|>',
  '<tool_call>',
  '</tool_call>',
  '<|fim_prefix|>',
  '<|fim_middle|>',
  '<|fim_suffix|>',
  '<|fim_pad|>',
  '<|repo_name|>',
  '<|file_sep|>',
];

/**
 * Qwen2-VL's chat template (the one Qwen2.5-VL ships): a default system turn, ChatML turns, each
 * image as <|vision_start|><|image_pad|><|vision_end|> (the processor widens <|image_pad|>).
 */
const CHAT_TEMPLATE =
  '{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}' +
  "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}" +
  "<|im_start|>{{ message['role'] }}\n" +
  "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n" +
  "{% else %}{% for content in message['content'] %}" +
  "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}" +
  '{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>' +
  "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}" +
  '{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>' +
  "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n" +
  '{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

export function writeQwen25Vl(out: string): string {
  mkdirSync(join(out, 'onnx'), { recursive: true });
  const tok = buildTokenizer(240, 0, { specials: QWEN_SPECIAL_TOKENS });
  const dims = tinyMropeDims(tok.vocabSize, { glm: false, ropeTheta: 1000000, rmsEps: 1e-6 });
  const id = tok.specialIds;
  const eos = [id['<|im_end|>'], id['<|endoftext|>']];
  const tokenIds = {
    vision_start_token_id: id['<|vision_start|>'],
    vision_end_token_id: id['<|vision_end|>'],
    vision_token_id: id['<|vision_pad|>'],
    image_token_id: id['<|image_pad|>'],
    video_token_id: id['<|video_pad|>'],
  };
  writeJson(out, 'config.json', {
    architectures: ['Qwen2_5_VLForConditionalGeneration'],
    model_type: 'qwen2_5_vl',
    ...tokenIds,
    bos_token_id: id['<|endoftext|>'],
    eos_token_id: id['<|im_end|>'],
    tie_word_embeddings: false,
    text_config: {
      model_type: 'qwen2_5_vl_text',
      ...textSizes(dims),
      max_position_embeddings: 128000,
      rms_norm_eps: dims.rmsEps,
      rope_theta: dims.ropeTheta,
      rope_scaling: { type: 'mrope', rope_type: 'default', mrope_section: dims.mropeSection },
      sliding_window: 32768,
      use_sliding_window: false,
      bos_token_id: id['<|endoftext|>'],
      eos_token_id: id['<|im_end|>'],
      tie_word_embeddings: false,
      use_cache: true,
      ...tokenIds,
    },
    vision_config: {
      model_type: 'qwen2_5_vl',
      depth: dims.visionLayers,
      hidden_size: dims.visionHidden,
      intermediate_size: dims.visionIntermediate,
      num_heads: dims.visionHeads,
      hidden_act: 'silu',
      in_chans: 3,
      patch_size: dims.patchSize,
      temporal_patch_size: dims.temporalPatchSize,
      spatial_merge_size: dims.mergeSize,
      out_hidden_size: dims.hidden,
      window_size: 112,
      fullatt_block_indexes: [0],
      tokens_per_second: 2,
    },
    'transformers.js_config': { dtype: 'fp32' },
    _comment:
      'Random weights: glimpse test fixture written by scripts/make-tiny-vlm.ts --arch qwen2.5-vl. Output is meaningless text.',
  });
  // Qwen2.5-VL-Instruct's own generation settings (greedy in effect: top_k 1), its repetition penalty included.
  writeJson(out, 'generation_config.json', {
    bos_token_id: id['<|endoftext|>'],
    pad_token_id: id['<|endoftext|>'],
    do_sample: true,
    eos_token_id: eos,
    repetition_penalty: 1.05,
    temperature: 0.1,
    top_p: 0.001,
    top_k: 1,
  });
  // Qwen2.5-VL's image processor settings as save_pretrained writes them out in full (the ONNX
  // exports' form): 56x56 px at least, 12.8 MP at most, CLIP mean/std. transformers.js resizes
  // only when do_resize or size is present, so the short form of the original repository
  // (min_pixels/max_pixels alone) would hand the vision encoder unresized pixels.
  writeJson(out, 'preprocessor_config.json', {
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_processor_type: 'Qwen2VLImageProcessor',
    image_std: [0.26862954, 0.26130258, 0.27577711],
    max_pixels: 12845056,
    merge_size: dims.mergeSize,
    min_pixels: 3136,
    patch_size: dims.patchSize,
    processor_class: 'Qwen2_5_VLProcessor',
    resample: 3,
    rescale_factor: 1 / 255,
    size: { longest_edge: 12845056, shortest_edge: 3136 },
    temporal_patch_size: dims.temporalPatchSize,
  });
  writeJson(out, 'tokenizer_config.json', {
    add_prefix_space: false,
    bos_token: null,
    clean_up_tokenization_spaces: false,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    errors: 'replace',
    model_max_length: 131072,
    split_special_tokens: false,
    additional_special_tokens: QWEN_SPECIAL_TOKENS.slice(1),
    processor_class: 'Qwen2_5_VLProcessor',
    tokenizer_class: 'Qwen2Tokenizer',
    chat_template: CHAT_TEMPLATE,
  });
  writeJson(out, 'tokenizer.json', tok.tokenizerJson);
  writeFileSync(
    join(out, 'onnx', 'vision_encoder.onnx'),
    buildPatchVisionEncoder(dims, seededRandom(21), 'image_grid_thw'),
  );
  writeFileSync(join(out, 'onnx', 'embed_tokens.onnx'), buildEmbedTokens(dims, seededRandom(22)));
  writeFileSync(join(out, 'onnx', 'decoder_model_merged.onnx'), buildMropeDecoder(dims, seededRandom(23)));
  writeFileSync(
    join(out, 'README.md'),
    `# tiny-qwen2.5-vl (test fixture)\n\nRandom-weight Qwen2.5-VL-architecture model (Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor)\n` +
      `written by \`npm run make-tiny-vlm -- --arch qwen2.5-vl\` (scripts/make-tiny-vlm.ts). Vocabulary ${dims.vocabSize} tokens with Qwen2's special tokens,\n` +
      `decoder ${dims.layers} layers x ${dims.hidden} hidden (${dims.heads} query / ${dims.kvHeads} key-value heads, M-RoPE sections ${dims.mropeSection.join('/')}),\n` +
      `vision ${dims.visionLayers} block x ${dims.visionHidden} over ${dims.patchSize} px patches merged ${dims.mergeSize}x${dims.mergeSize}.\n` +
      `It exercises transformers.js's real Qwen2.5-VL path (vision start tokens, image_grid_thw, 3-D rotary positions, cached decoding); its text is meaningless.\n`,
  );
  return `wrote ${out} (qwen2.5-vl, vocab ${dims.vocabSize}, decoder ${dims.layers}x${dims.hidden})`;
}
