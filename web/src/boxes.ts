/**
 * GLM grounding: the model marks regions as <|begin_of_box|>[x1,y1,x2,y2]<|end_of_box|>, with
 * coordinates normalized to 0..1000 over the image. One marker may hold several boxes
 * ([[...],[...]]). The same markers also wrap a plain final answer in GLM's thinking models, so
 * a marker without coordinates is kept as highlighted text rather than dropped. The marker
 * parser is the server's own (src/protocols/boxes.ts), so the page and `glimpse_boxes` agree.
 */
import { BOX_BEGIN as BEGIN, BOX_END as END, parseBoxList, type Box } from '../../src/protocols/boxes';

export { parseBoxList, type Box };

export type BoxSegment =
  { kind: 'text'; text: string } | { kind: 'boxes'; boxes: Box[]; raw: string } | { kind: 'highlight'; text: string };

/**
 * The boxes of glimpse's `glimpse_boxes` field (the server found them in the whole answer), in the
 * 0..1000 numbers the drawing uses; undefined when the field is missing or not in that shape.
 */
export function serverBoxes(field: unknown): Box[] | undefined {
  if (!Array.isArray(field)) return undefined;
  const boxes: Box[] = [];
  for (const b of field as Array<{ index?: unknown; normalized?: unknown }>) {
    const n = b?.normalized;
    if (typeof b?.index !== 'number' || !Array.isArray(n) || n.length !== 4 || !n.every((v) => typeof v === 'number'))
      return undefined;
    const [x1, y1, x2, y2] = n as [number, number, number, number];
    boxes.push({ index: b.index, x1, y1, x2, y2 });
  }
  return boxes;
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
