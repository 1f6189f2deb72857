/**
 * Idefics3/SmolVLM cut each image into tiles (a 4:3 photo: 12 tiles of 512 px plus a thumbnail)
 * and transformers.js sends them all through the vision encoder in one run, whose attention maps
 * grow with the tile count: on the CPU that run alone peaked at about 3 GB for one photo with
 * SmolVLM-256M's sizes. Tiles are independent (they only share the batch dimension), so running
 * them in groups gives the same features with a fraction of the memory, and no slower. Between
 * groups is also where a cancelled request stops: a photo's vision pass takes seconds on a CPU.
 */
import { cat, Tensor } from '@huggingface/transformers';

type Inputs = Record<string, Tensor | undefined>;
export type EncodeImage = (inputs: Inputs) => Promise<Tensor>;

/** Thrown from the vision pass when the request was cancelled; the generation ends as cancelled. */
export class CancelledBeforeDecoding extends Error {}

/**
 * Below this many tile pixels in one run (about four 512 px tiles), one run is kept: small tiles
 * hold little memory, and extra runs would only add their fixed cost.
 */
export const GROUP_FROM_PIXELS = 4 * 512 * 512;

/**
 * Tiles [from, to) of a [1, tiles, ...] tensor as a view of the same memory (Tensor.slice copies
 * element by element: about 80 ms per group for 512 px tiles).
 */
function tileRange(t: Tensor, [from, to]: [number, number]): Tensor {
  const per = t.dims.slice(2).reduce((a, b) => a * b, 1);
  const data = t.data as Float32Array | Uint8Array;
  return new Tensor(t.type, data.subarray(from * per, to * per), [1, to - from, ...t.dims.slice(2)]);
}

/** An encode_image that runs the tiles `group` at a time when they are many and large enough. */
export function groupedTileEncoder(
  encodeAll: EncodeImage,
  group: number,
  cancelled: () => boolean,
  fromPixels = GROUP_FROM_PIXELS,
): EncodeImage {
  return async (inputs) => {
    const pixels = inputs.pixel_values;
    const mask = inputs.pixel_attention_mask;
    // [batch, tiles, channels, height, width]; generation sends one batch of images at a time.
    if (!pixels || pixels.dims.length !== 5 || pixels.dims[0] !== 1) return encodeAll(inputs);
    const [, tiles, , height, width] = pixels.dims as [number, number, number, number, number];
    if (group < 1 || tiles <= group || tiles * height * width <= fromPixels) return encodeAll(inputs);
    const parts: Tensor[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < tiles; i += group) {
      if (cancelled()) throw new CancelledBeforeDecoding();
      const range: [number, number] = [i, Math.min(tiles, i + group)];
      parts.push(
        await encodeAll({
          ...inputs,
          pixel_values: tileRange(pixels, range),
          pixel_attention_mask: mask && tileRange(mask, range),
        }),
      );
      sizes.push(range[1] - range[0]);
    }
    // Features come one row per tile ([tiles, tokens, hidden]) or all tiles in one row
    // ([1, tiles * tokens, hidden]), depending on the export; join along the axis that holds tiles.
    if (parts.every((p, k) => p.dims[0] === sizes[k])) return cat(parts, 0);
    if (parts.every((p) => p.dims[0] === 1 && p.dims.length === 3)) return cat(parts, 1);
    return encodeAll(inputs);
  };
}
