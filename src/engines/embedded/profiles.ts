/**
 * Model profiles: short names for the models the embedded engine is known to run, with what each
 * is good at, the image size its processor works at, and its prompt conventions. `--model-path
 * glm-ocr` (or `--model glm-ocr`) loads the profile's hub id; any other id or directory still works.
 */

export interface ModelProfile {
  name: string;
  hubId: string;
  /** One line for /v1/models and the page's model picker. */
  description: string;
  /** Longest image edge worth sending: past it the processor shrinks the image again anyway. */
  imageMaxEdge: number;
  /** Side of one vision token in pixels (patch x merge); images are best sent in multiples of it. */
  patchGrid: number;
  /**
   * The processor itself resizes every image to multiples of patchGrid (Qwen2-VL's smart_resize),
   * so glimpse sends them sized so and nothing is resampled twice. SmolVLM's pads into 512 px tiles
   * instead: flooring its images to 512 would cut them.
   */
  gridResize: boolean;
  /** Prompts the model was trained to follow, offered as one-click tasks. */
  tasks: { label: string; prompt: string }[];
  thinks: boolean;
  /** Answers with bounding boxes (<|begin_of_box|>...) when asked to locate things. */
  boxes: boolean;
}

export const PROFILES: readonly ModelProfile[] = [
  {
    name: 'glm-ocr',
    hubId: 'onnx-community/GLM-OCR-ONNX',
    description:
      'GLM-OCR (0.9B, Zhipu GLM-V family): reads documents in Chinese and English — text, tables (as HTML) and formulas (as LaTeX).',
    // GLM-V's processor would keep up to ~9.6 MP, but its vision encoder attends over every patch at
    // once: a 1024 px page (1 369 image tokens) peaked at 9.5 GB on the real-size 8-bit model, and
    // memory grows with the square of the patch count, so 2048 px would not fit a laptop.
    imageMaxEdge: 1024,
    patchGrid: 28,
    gridResize: true,
    tasks: [
      { label: 'Text', prompt: 'Text Recognition:' },
      { label: 'Table', prompt: 'Table Recognition:' },
      { label: 'Formula', prompt: 'Formula Recognition:' },
    ],
    thinks: false,
    boxes: false,
  },
  {
    name: 'smolvlm',
    hubId: 'HuggingFaceTB/SmolVLM-256M-Instruct',
    description: 'SmolVLM-256M: general questions about a picture in English, fast on any laptop; cannot read Chinese.',
    // Four 512 px tiles across: SmolVLM's processor resizes the longest edge to 2048.
    imageMaxEdge: 2048,
    patchGrid: 512,
    gridResize: false,
    tasks: [],
    thinks: false,
    boxes: false,
  },
  {
    name: 'qwen2.5-vl-3b',
    hubId: 'onnx-community/Qwen2.5-VL-3B-Instruct-ONNX',
    description:
      'Qwen2.5-VL-3B: general questions, charts and documents in Chinese and English, locating objects; slower (3B).',
    imageMaxEdge: 1344,
    patchGrid: 28,
    gridResize: true,
    tasks: [],
    thinks: false,
    boxes: true,
  },
];

/** The profile `modelPath` names, by short name or by its hub id. */
export function profileFor(modelPath: string): ModelProfile | undefined {
  return PROFILES.find((p) => p.name === modelPath || p.hubId === modelPath);
}

/** What to load for `modelPath`: a profile's hub id, else the id or directory as given. */
export function modelSource(modelPath: string): string {
  return PROFILES.find((p) => p.name === modelPath)?.hubId ?? modelPath;
}
