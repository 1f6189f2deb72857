/**
 * The `glimpse_media` extension field: what glimpse made of each document and video of a request,
 * from the pages and frames it actually rendered (their count, their size after the budget, a
 * video's frame rate), so a client can show it ("12 pages, shown at 620x877"), with small views of
 * each when the request asked (glimpse_thumbnails). Read from the resolved messages, so it costs
 * no second render and says exactly what the model was given.
 */
import type { GenerateRequest, MediaOrigin } from '../core/index.js';

export interface MediaOut {
  type: 'document' | 'video';
  filename?: string;
  /** Position of its first page or frame among the request's images (glimpse_boxes' `image`). */
  image: number;
  pages?: number;
  frames?: number;
  /** Frames per second of video actually sampled. */
  fps?: number;
  duration_seconds?: number;
  /** Size of the first page or frame as the model got it. */
  width: number;
  height: number;
  thumbnails?: string[];
}

/** Every document and video of the request, in order; no field when it has none (or videos went whole). */
export function mediaField(messages: GenerateRequest['messages'] | undefined): { glimpse_media?: MediaOut[] } {
  const out: MediaOut[] = [];
  const seen = new Set<MediaOrigin>();
  let image = 0;
  for (const m of messages ?? [])
    for (const p of m.content) {
      if (p.type !== 'image') continue;
      const from = p.from;
      if (from && p.resolved && !seen.has(from)) {
        seen.add(from);
        const { width, height } = p.resolved;
        const d = from.durationSeconds;
        out.push({
          type: from.kind,
          ...(from.filename ? { filename: from.filename } : {}),
          image,
          ...(from.kind === 'document'
            ? { pages: from.count }
            : {
                frames: from.count,
                ...(d ? { fps: Math.round((from.count / d) * 100) / 100, duration_seconds: d } : {}),
              }),
          width,
          height,
          ...(from.thumbnails ? { thumbnails: from.thumbnails } : {}),
        });
      }
      image++;
    }
  return out.length ? { glimpse_media: out } : {};
}
