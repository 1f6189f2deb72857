/**
 * GLM grounding: the model marks regions as <|begin_of_box|>[x1,y1,x2,y2]<|end_of_box|>, with
 * coordinates normalized to 0..1000 over the image. One marker may hold several boxes
 * ([[...],[...]]). The same markers also wrap a plain final answer in GLM's thinking models, so
 * a marker without coordinates is kept as highlighted text rather than dropped.
 */
export interface Box {
  /** 1-based number shown on the image and in the text. */
  index: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export type BoxSegment = { kind: 'text'; text: string } | { kind: 'boxes'; boxes: Box[]; raw: string } | { kind: 'highlight'; text: string };

const BEGIN = '<|begin_of_box|>';
const END = '<|end_of_box|>';
const QUAD = /\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\]/g;

function clamp(v: number): number {
  return Math.min(1000, Math.max(0, v));
}

/** Boxes in a marker's inner text, or null when it is not coordinates. */
export function parseBoxList(inner: string, firstIndex: number): Box[] | null {
  const stripped = inner.replace(QUAD, '').replace(/[\s,[\]]/g, '');
  if (stripped !== '') return null;
  const boxes: Box[] = [];
  for (const m of inner.matchAll(QUAD)) {
    const [a, b, c, d] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
    const x1 = clamp(Math.min(a, c));
    const x2 = clamp(Math.max(a, c));
    const y1 = clamp(Math.min(b, d));
    const y2 = clamp(Math.max(b, d));
    if (x2 - x1 <= 0 || y2 - y1 <= 0) continue;
    boxes.push({ index: firstIndex + boxes.length, x1, y1, x2, y2 });
  }
  return boxes.length ? boxes : null;
}

/** Splits an answer into text, box markers and highlighted answers. An unfinished marker (still streaming) is left out. */
export function splitBoxes(text: string): { segments: BoxSegment[]; boxes: Box[] } {
  const segments: BoxSegment[] = [];
  const boxes: Box[] = [];
  let rest = text;
  for (;;) {
    const b = rest.indexOf(BEGIN);
    if (b === -1) {
      if (rest) segments.push({ kind: 'text', text: hidePartialMarker(rest) });
      break;
    }
    if (b > 0) segments.push({ kind: 'text', text: rest.slice(0, b) });
    const after = rest.slice(b + BEGIN.length);
    const e = after.indexOf(END);
    if (e === -1) break; // still streaming inside a marker
    const inner = after.slice(0, e);
    const parsed = parseBoxList(inner, boxes.length + 1);
    if (parsed) {
      boxes.push(...parsed);
      segments.push({ kind: 'boxes', boxes: parsed, raw: inner.trim() });
    } else if (inner.trim()) {
      segments.push({ kind: 'highlight', text: inner.trim() });
    }
    rest = after.slice(e + END.length);
  }
  return { segments, boxes };
}

function hidePartialMarker(s: string): string {
  for (let n = Math.min(BEGIN.length - 1, s.length); n > 1; n--) {
    if (s.endsWith(BEGIN.slice(0, n))) return s.slice(0, s.length - n);
  }
  return s;
}
