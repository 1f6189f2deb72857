/**
 * GLM grounding boxes as data. GLM-4.6V marks regions as <|begin_of_box|>[x1,y1,x2,y2]<|end_of_box|>
 * (or several, [[...],[...]]), in coordinates normalized to 0..1000 over the image it looked at.
 * The answer text stays as the model wrote it; this module finds the boxes, in the whole text or
 * piece by piece as a stream arrives, and converts them to the pixels of the image the client sent,
 * for the `glimpse_boxes` extension field.
 *
 * Pure (no Node imports): the page imports the same parser, so both read markers the same way.
 */

/** One box in GLM's 0..1000 coordinates; `index` is its 1-based number in the answer. */
export interface Box {
  index: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export const BOX_BEGIN = '<|begin_of_box|>';
export const BOX_END = '<|end_of_box|>';
const QUAD = /\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\]/g;

const clamp = (v: number): number => Math.min(1000, Math.max(0, v));

/**
 * The boxes in a marker's inner text, or null when it is not coordinates: GLM's thinking models
 * also wrap a plain final answer in the same markers, and that text is not a box. Corners are put
 * in order and clamped to 0..1000; a box with no area is dropped.
 */
export function parseBoxList(inner: string, firstIndex: number): Box[] | null {
  if (inner.replace(QUAD, '').replace(/[\s,[\]]/g, '') !== '') return null;
  const boxes: Box[] = [];
  for (const m of inner.matchAll(QUAD)) {
    const [a, b, c, d] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
    const x1 = clamp(Math.min(a, c));
    const x2 = clamp(Math.max(a, c));
    const y1 = clamp(Math.min(b, d));
    const y2 = clamp(Math.max(b, d));
    if (x2 <= x1 || y2 <= y1) continue;
    boxes.push({ index: firstIndex + boxes.length, x1, y1, x2, y2 });
  }
  return boxes.length ? boxes : null;
}

/**
 * Finds boxes in text that arrives in pieces; a marker split anywhere (even inside a token) is
 * read once whole. Only the text from an unfinished marker on is held, so a long answer is not kept.
 */
export class BoxScanner {
  private pending = '';
  readonly boxes: Box[] = [];

  push(piece: string): void {
    this.pending += piece;
    for (;;) {
      const b = this.pending.indexOf(BOX_BEGIN);
      if (b === -1) {
        // Keep a tail that may be the start of a marker cut by the piece boundary.
        this.pending = this.pending.slice(Math.max(0, this.pending.length - (BOX_BEGIN.length - 1)));
        return;
      }
      const e = this.pending.indexOf(BOX_END, b + BOX_BEGIN.length);
      if (e === -1) {
        this.pending = this.pending.slice(b);
        return;
      }
      const parsed = parseBoxList(this.pending.slice(b + BOX_BEGIN.length, e), this.boxes.length + 1);
      if (parsed) this.boxes.push(...parsed);
      this.pending = this.pending.slice(e + BOX_END.length);
    }
  }
}

/** Every box in a whole answer. */
export function findBoxes(text: string): Box[] {
  const s = new BoxScanner();
  s.push(text);
  return s.boxes;
}

/** The image boxes refer to: its position among the request's images and its size as the client sent it. */
export interface BoxImage {
  index: number;
  width: number;
  height: number;
}

/** A box of `glimpse_boxes`: pixel corners on the chosen image, and the model's own 0..1000 numbers. */
export interface BoxOut {
  index: number;
  image: number | null;
  x1?: number;
  y1?: number;
  x2?: number;
  y2?: number;
  normalized: [number, number, number, number];
}

/** Boxes in pixels of `image` (rounded); with no image, only the normalized numbers. */
export function boxesOut(boxes: Box[], image: BoxImage | undefined): BoxOut[] {
  return boxes.map((b) => {
    const normalized: [number, number, number, number] = [b.x1, b.y1, b.x2, b.y2];
    if (!image) return { index: b.index, image: null, normalized };
    const px = (v: number, side: number) => Math.round((v / 1000) * side);
    return {
      index: b.index,
      image: image.index,
      x1: px(b.x1, image.width),
      y1: px(b.y1, image.height),
      x2: px(b.x2, image.width),
      y2: px(b.y2, image.height),
      normalized,
    };
  });
}

/**
 * The `glimpse_boxes` extension field: the answer's boxes in pixels of the image they are on (see
 * boxImage), present only when the answer has boxes. `messages` are the request's, after its images
 * were resolved.
 */
export function boxesField(boxes: Box[], messages: readonly MessageLike[] | undefined): { glimpse_boxes?: BoxOut[] } {
  return boxes.length ? { glimpse_boxes: boxesOut(boxes, messages ? boxImage(messages) : undefined) } : {};
}

/** The parts of a request this module reads (structural, so the page's own types fit too). */
type MessageLike = {
  role: string;
  content: ReadonlyArray<{
    type: string;
    resolved?: { width: number; height: number; original?: { width: number; height: number } };
  }>;
};

/**
 * Which image the boxes are on: the first image of the last user message that has one (the image
 * the question is about; the page picks the same one). Its size is the client's image, upright,
 * before glimpse shrank it; a page of a document or a frame of a video is counted as an image and
 * measured as rendered. `index` counts every image of the request in order, from 0.
 */
export function boxImage(messages: readonly MessageLike[]): BoxImage | undefined {
  let seen = 0;
  let chosen: BoxImage | undefined;
  for (const m of messages) {
    let firstHere: BoxImage | undefined;
    for (const p of m.content) {
      if (p.type !== 'image') continue;
      const r = p.resolved;
      if (r && !firstHere && m.role === 'user')
        firstHere = { index: seen, ...(r.original ?? { width: r.width, height: r.height }) };
      seen++;
    }
    if (firstHere) chosen = firstHere;
  }
  return chosen;
}
