/**
 * A GLM-OCR model (GlmOcrForConditionalGeneration with the GLM-V processor, Glm46VProcessor)
 * laid out as the published ONNX export is: config.json with text and vision sub-configs,
 * generation_config.json, preprocessor_config.json (14 px patches, 2x2 merge, temporal patch 2,
 * min/max pixels), tokenizer.json and tokenizer_config.json with the chat template, and
 * onnx/{vision_encoder,embed_tokens,decoder_model_merged}.onnx. Random weights.
 *
 * The special tokens are GLM's, in GLM's order; at the real size they sit at GLM-OCR's own ids
 * (59,246 onwards: <|image|> is 59,280), at the tiny size right after the small BPE vocabulary.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildEmbedTokens } from './graphs.js';
import { writeJson } from './files.js';
import {
  buildMropeDecoder,
  buildPatchVisionEncoder,
  textSizes,
  tinyMropeDims,
  type MropeDims,
} from './mrope-graphs.js';
import { seededRandom } from './onnx-builder.js';
import { buildTokenizer } from './tokenizer.js';

export const GLM_SPECIAL_TOKENS = [
  '<|endoftext|>',
  '[MASK]',
  '[gMASK]',
  '[sMASK]',
  '<sop>',
  '<eop>',
  '<|system|>',
  '<|user|>',
  '<|assistant|>',
  '<|observation|>',
  '<|begin_of_image|>',
  '<|end_of_image|>',
  '<|begin_of_video|>',
  '<|end_of_video|>',
  '<|begin_of_audio|>',
  '<|end_of_audio|>',
  '<|begin_of_transcription|>',
  '<|end_of_transcription|>',
  '<|code_prefix|>',
  '<|code_middle|>',
  '<|code_suffix|>',
  '<think>',
  '</think>',
  '<tool_call>',
  '</tool_call>',
  '<tool_response>',
  '</tool_response>',
  '<arg_key>',
  '</arg_key>',
  '<arg_value>',
  '</arg_value>',
  '/nothink',
  '<|begin_of_box|>',
  '<|end_of_box|>',
  '<|image|>',
  '<|video|>',
];

/**
 * GLM-V's conversation format: [gMASK]<sop>, then each turn as <|role|> and a newline, an image
 * as <|begin_of_image|><|image|><|end_of_image|> (the processor widens <|image|> to the image's
 * tokens), and the answer starting after "<|assistant|>\n".
 */
const CHAT_TEMPLATE =
  '[gMASK]<sop>' +
  '{%- for m in messages -%}' +
  "{%- if m.role == 'system' -%}{{ '<|system|>\\n' }}{%- elif m.role == 'assistant' -%}{{ '<|assistant|>\\n' }}{%- else -%}{{ '<|user|>\\n' }}{%- endif -%}" +
  '{%- if m.content is string -%}{{ m.content }}{%- else -%}{%- for item in m.content -%}' +
  "{%- if item.type == 'text' -%}{{ item.text }}{%- elif item.type == 'image' -%}{{ '<|begin_of_image|><|image|><|end_of_image|>' }}{%- endif -%}" +
  '{%- endfor -%}{%- endif -%}' +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}";

/** `real`: GLM-OCR's own sizes (0.9B: 24-block 1024-wide vision tower, 16-layer 1536-wide decoder) with 8-bit weights. */
export function writeGlmOcr(out: string, real: boolean): string {
  mkdirSync(join(out, 'onnx'), { recursive: true });
  const tok = real
    ? buildTokenizer(240, 59392, { specials: GLM_SPECIAL_TOKENS, specialsFrom: 59246 })
    : buildTokenizer(240, 0, { specials: GLM_SPECIAL_TOKENS });
  const dims: MropeDims = real
    ? {
        vocabSize: tok.vocabSize,
        hidden: 1536,
        heads: 16,
        kvHeads: 8,
        headDim: 128,
        layers: 16,
        intermediate: 4608,
        ropeTheta: 10000,
        rmsEps: 1e-5,
        mropeSection: [16, 24, 24],
        glm: true,
        visionHidden: 1024,
        visionHeads: 16,
        visionLayers: 24,
        visionIntermediate: 4096,
        patchSize: 14,
        temporalPatchSize: 2,
        mergeSize: 2,
        quantize: true,
      }
    : tinyMropeDims(tok.vocabSize, { glm: true, ropeTheta: 10000, rmsEps: 1e-5 });
  const id = tok.specialIds;
  const eos = [id['<|endoftext|>'], id['<|user|>']];
  writeJson(out, 'config.json', {
    architectures: ['GlmOcrForConditionalGeneration'],
    model_type: 'glm_ocr',
    image_start_token_id: id['<|begin_of_image|>'],
    image_end_token_id: id['<|end_of_image|>'],
    image_token_id: id['<|image|>'],
    video_start_token_id: id['<|begin_of_video|>'],
    video_end_token_id: id['<|end_of_video|>'],
    video_token_id: id['<|video|>'],
    tie_word_embeddings: false,
    text_config: {
      model_type: 'glm_ocr_text',
      ...textSizes(dims),
      attention_bias: false,
      max_position_embeddings: 131072,
      rms_norm_eps: dims.rmsEps,
      rope_parameters: {
        rope_type: 'default',
        rope_theta: dims.ropeTheta,
        mrope_section: dims.mropeSection,
        partial_rotary_factor: 1.0,
      },
      eos_token_id: eos,
      pad_token_id: id['<|endoftext|>'],
      tie_word_embeddings: false,
      use_cache: true,
    },
    vision_config: {
      model_type: 'glm_ocr_vision',
      depth: dims.visionLayers,
      hidden_size: dims.visionHidden,
      intermediate_size: dims.visionIntermediate,
      num_heads: dims.visionHeads,
      hidden_act: 'silu',
      attention_bias: true,
      in_channels: 3,
      image_size: 336,
      patch_size: dims.patchSize,
      temporal_patch_size: dims.temporalPatchSize,
      spatial_merge_size: dims.mergeSize,
      out_hidden_size: dims.hidden,
      rms_norm_eps: dims.rmsEps,
    },
    'transformers.js_config': { dtype: real ? 'q8' : 'fp32' },
    _comment:
      'Random weights: glimpse test fixture written by scripts/make-tiny-vlm.ts --arch glm-ocr. Output is meaningless text.',
  });
  writeJson(out, 'generation_config.json', { do_sample: false, eos_token_id: eos, pad_token_id: id['<|endoftext|>'] });
  // GLM-OCR's own image processor settings: min 112x112 px, max 9,633,792 px, CLIP mean/std.
  writeJson(out, 'preprocessor_config.json', {
    size: { shortest_edge: 12544, longest_edge: 9633792 },
    do_rescale: true,
    patch_size: dims.patchSize,
    temporal_patch_size: dims.temporalPatchSize,
    merge_size: dims.mergeSize,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_std: [0.26862954, 0.26130258, 0.27577711],
    image_processor_type: 'Glm46VImageProcessor',
    processor_class: 'Glm46VProcessor',
  });
  writeJson(out, 'tokenizer_config.json', {
    clean_up_tokenization_spaces: false,
    eos_token: '<|endoftext|>',
    pad_token: '<|endoftext|>',
    padding_side: 'left',
    extra_special_tokens: GLM_SPECIAL_TOKENS,
    model_max_length: 655380,
    processor_class: 'Glm46VProcessor',
    tokenizer_class: 'TokenizersBackend',
    chat_template: CHAT_TEMPLATE,
  });
  writeJson(out, 'tokenizer.json', tok.tokenizerJson);
  const suffix = real ? '_quantized' : '';
  writeFileSync(
    join(out, 'onnx', `vision_encoder${suffix}.onnx`),
    buildPatchVisionEncoder(dims, seededRandom(11), 'image_grid_thw'),
  );
  writeFileSync(join(out, 'onnx', `embed_tokens${suffix}.onnx`), buildEmbedTokens(dims, seededRandom(12)));
  writeFileSync(join(out, 'onnx', `decoder_model_merged${suffix}.onnx`), buildMropeDecoder(dims, seededRandom(13)));
  writeFileSync(
    join(out, 'README.md'),
    `# ${real ? 'GLM-OCR-shaped random model (benchmarks)' : 'tiny-glm-ocr (test fixture)'}\n\nRandom-weight GLM-OCR-architecture model (GlmOcrForConditionalGeneration, Glm46VProcessor)\n` +
      `written by \`npm run make-tiny-vlm -- --arch glm-ocr\` (scripts/make-tiny-vlm.ts). Vocabulary ${dims.vocabSize} tokens with GLM's special tokens,\n` +
      `decoder ${dims.layers} layers x ${dims.hidden} hidden (${dims.heads} query / ${dims.kvHeads} key-value heads, M-RoPE sections ${dims.mropeSection.join('/')}),\n` +
      `vision ${dims.visionLayers} block(s) x ${dims.visionHidden} over ${dims.patchSize} px patches merged ${dims.mergeSize}x${dims.mergeSize}${real ? ', 8-bit weights' : ''}.\n` +
      `It exercises transformers.js's real GLM-OCR path (patching, image_grid_thw, 3-D rotary positions, cached decoding); its text is meaningless.\n`,
  );
  return `wrote ${out} (glm-ocr, vocab ${dims.vocabSize}, decoder ${dims.layers}x${dims.hidden})`;
}
