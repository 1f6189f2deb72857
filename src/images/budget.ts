import type { GenerateRequest, Usage } from '../core/index.js';

/**
 * Pixel budgets in the model's own unit. GLM-4.6V (like Qwen2-VL) cuts an image into 14 px
 * patches merged 2x2, so it sees sides in multiples of 28 and one 28x28 cell is one image token;
 * anything in between is resized away by the server. Sizing to that grid here means no pixel is
 * sent that the model throws away, and the token count of an image is known before it is sent.
 */

export interface Size {
  width: number;
  height: number;
}

/**
 * The size (sides multiples of `unit`, aspect kept as well as the grid allows) with at most
 * `maxPixels` and at least `minPixels`, the way Qwen2-VL's smart_resize does it. Never enlarges
 * past the source unless the source is below minPixels.
 */
export function fitToBudget(width: number, height: number, maxPixels: number, minPixels: number, unit: number): Size {
  const w = Math.max(1, width);
  const h = Math.max(1, height);
  let scale = 1;
  if (w * h > maxPixels) scale = Math.sqrt(maxPixels / (w * h));
  else if (w * h < minPixels) scale = Math.sqrt(minPixels / (w * h));
  // Rounding down keeps the result inside maxPixels; a side never goes below one unit.
  const side = (v: number) => Math.max(unit, Math.floor((v * scale) / unit) * unit);
  let out = { width: side(w), height: side(h) };
  // Rounding both sides down can leave the area under minPixels; one more unit on the shorter side fixes that.
  if (
    out.width * out.height < minPixels &&
    out.width * out.height + unit * Math.max(out.width, out.height) <= maxPixels
  ) {
    out = out.width <= out.height ? { ...out, width: out.width + unit } : { ...out, height: out.height + unit };
  }
  return out;
}

/**
 * The size an image is sent at to a model whose processor works in a `unit` px grid: shrunk
 * (never enlarged) to fit `maxEdge`, then each side down to a multiple of `unit` (at least one),
 * so the processor has nothing left to resample and no pixel is sent that it would drop.
 */
export function fitToGrid(width: number, height: number, maxEdge: number, unit: number): Size {
  const scale = Math.min(1, maxEdge / Math.max(1, width, height));
  const w = width * scale;
  const h = height * scale;
  // Already inside the edge: the budget is the area itself, so only the rounding to the grid acts.
  return fitToBudget(w, h, w * h, 0, unit);
}

/** The per-item share of a budget spread over `count` items (pages, frames). */
export function shareOf(totalPixels: number, count: number, minPixels: number, maxPixels: number): number {
  return Math.min(maxPixels, Math.max(minPixels, Math.floor(totalPixels / Math.max(1, count))));
}

/** Image tokens an image of this size costs a model with this pixel unit (one per unit x unit cell). */
export function imageTokens(width: number, height: number, unit: number): number {
  return Math.ceil(width / unit) * Math.ceil(height / unit);
}

/**
 * Usage with the image tokens filled in: the engine's count when it gave one, else estimated
 * from the resolved images (pages and frames included) in the model's unit.
 */
export function withImageTokens(usage: Usage, req: GenerateRequest, unit: number): Usage {
  if (usage.imageTokens !== undefined) return usage;
  let tokens = 0;
  for (const m of req.messages)
    for (const p of m.content)
      if (p.type === 'image' && p.resolved) tokens += imageTokens(p.resolved.width, p.resolved.height, unit);
  return tokens ? { ...usage, imageTokens: tokens } : usage;
}
