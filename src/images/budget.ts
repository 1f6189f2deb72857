import type { GenerateRequest, ImageBudget, Usage } from '../core/index.js';

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
 *
 * A request's own bounds (min_pixels / max_pixels) act inside the server's: max_pixels shrinks
 * further, min_pixels enlarges a small image, but only as far as its longest side reaching
 * `maxEdge`; so a bound past the server's changes nothing (it is clamped, not refused).
 */
export function fitToGrid(
  width: number,
  height: number,
  maxEdge: number,
  unit: number,
  budget: ImageBudget = {},
): Size {
  const scale = Math.min(1, maxEdge / Math.max(1, width, height));
  const w = width * scale;
  const h = height * scale;
  // The most area this shape may have on this server: its longest side at maxEdge.
  const ceiling = (maxEdge / Math.max(w, h)) ** 2 * w * h;
  const minPixels = Math.min(budget.minPixels ?? 0, ceiling);
  // Without an enlargement the image's own area is the cap; with one, room up to the ceiling, so
  // the rounding to the grid can add the cell that keeps the area at least minPixels.
  const cap = minPixels > w * h ? ceiling : w * h;
  return fitToBudget(w, h, Math.max(minPixels, Math.min(budget.maxPixels ?? cap, cap)), minPixels, unit);
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
