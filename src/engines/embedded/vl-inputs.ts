/**
 * The model's inputs for a prompt and its images. For the Qwen2-VL family (Qwen2/2.5-VL, GLM-V,
 * GLM-OCR) with more than one image, transformers.js's own processor is not used as is: its image
 * processor takes a list of images as the frames of one video (its temporal axis), so images of
 * different sizes fail to stack and two of the same size become one two-frame grid. Here each image
 * goes through the image processor on its own (as the Python processor does), the patches and
 * grids are joined, and each image's token in the prompt is widened to its own count.
 */
import { cat, type RawImage, type Tensor } from '@huggingface/transformers';

type Inputs = Record<string, Tensor>;

interface PatchImageProcessor {
  (image: RawImage): Promise<{ pixel_values: Tensor; image_grid_thw: Tensor }>;
  config: { temporal_patch_size?: number; merge_size?: number };
}

interface ProcessorLike {
  (text: string, images?: RawImage[]): Promise<unknown>;
  tokenizer?: (text: string) => unknown;
  image_processor?: unknown;
}

export async function modelInputs(processor: ProcessorLike, prompt: string, images: RawImage[]): Promise<Inputs> {
  if (!images.length) return processor.tokenizer!(prompt) as Inputs;
  const imageProcessor = processor.image_processor as PatchImageProcessor | undefined;
  const imageToken = (processor.constructor as { image_token?: string }).image_token;
  const patched = imageProcessor?.config?.temporal_patch_size !== undefined && imageToken !== undefined;
  if (images.length === 1 || !patched) return (await processor(prompt, images)) as Inputs;

  const each = [];
  for (const image of images) each.push(await imageProcessor(image));
  const merge = (imageProcessor.config.merge_size ?? 2) ** 2;
  const counts = each.map(
    (e) => (e.image_grid_thw.tolist() as bigint[][])[0].reduce((a, b) => a * Number(b), 1) / merge,
  );
  const pieces = prompt.split(imageToken);
  if (pieces.length - 1 !== images.length)
    throw new Error(`The prompt has ${pieces.length - 1} image tokens for ${images.length} images.`);
  const text = pieces.reduce((acc, piece, i) => acc + imageToken.repeat(counts[i - 1]) + piece);
  return {
    ...(processor.tokenizer!(text) as Inputs),
    pixel_values: cat(
      each.map((e) => e.pixel_values),
      0,
    ),
    image_grid_thw: cat(
      each.map((e) => e.image_grid_thw),
      0,
    ),
  };
}
