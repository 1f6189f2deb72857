/**
 * PDFs and videos are attached like images but sent whole, as the user picked them: glimpse renders
 * the pages and samples the frames itself, within the budgets it applies to every client, so the
 * page neither decodes nor resizes them. They go out as OpenAI's `file` part (file_data data URL)
 * and a `video_url` data URL, the shapes /v1/chat/completions takes.
 */
import type { UiConfig, WireFilePart, WireImagePart, WireVideoPart } from './client';
import { newId } from './ids';
import { ImageRejected, prepareImage, readAsDataUrl, type Attachment, type RenderedMedia } from './images';
import type { Message } from './store';

const VIDEO_TYPES: Record<string, string> = {
  mp4: 'video/mp4',
  webm: 'video/webm',
  mov: 'video/quicktime',
  mkv: 'video/x-matroska',
};

/** What a file is by its type, or by its name where the browser gave no type (an .mkv often has none). */
export function mediaKind(file: {
  name: string;
  type: string;
}): { kind: 'document' | 'video'; mime: string } | undefined {
  const ext = /\.([a-z0-9]+)$/i.exec(file.name)?.[1]?.toLowerCase() ?? '';
  if (file.type === 'application/pdf' || (!file.type && ext === 'pdf'))
    return { kind: 'document', mime: 'application/pdf' };
  if (Object.values(VIDEO_TYPES).includes(file.type)) return { kind: 'video', mime: file.type };
  if (!file.type && VIDEO_TYPES[ext]) return { kind: 'video', mime: VIDEO_TYPES[ext] };
  return undefined;
}

/** An image (checked and shrunk), or a PDF or video (checked for size, kept whole). */
export async function prepareAttachment(file: File, cfg: UiConfig): Promise<Attachment> {
  const media = mediaKind(file);
  if (!media) return prepareImage(file, cfg);
  const name = file.name || media.kind;
  if (file.size > cfg.maxFileBytes)
    throw new ImageRejected('file_too_big', name, { bytes: file.size, limit: cfg.maxFileBytes });
  // The data URL names the type found above, not the browser's guess (empty for some videos).
  const read = await readAsDataUrl(file);
  const dataUrl = `data:${media.mime};base64,${read.slice(read.indexOf(',') + 1)}`;
  const size = { width: 0, height: 0, originalWidth: 0, originalHeight: 0 };
  return {
    id: newId('att'),
    name,
    dataUrl,
    mime: media.mime,
    kind: media.kind,
    bytes: file.size,
    originalBytes: file.size,
    ...size,
  };
}

/** The part an attachment is sent as. */
export function wirePart(a: Attachment): WireImagePart | WireFilePart | WireVideoPart {
  if (a.kind === 'document') return { type: 'file', file: { file_data: a.dataUrl, filename: a.name } };
  if (a.kind === 'video') return { type: 'video_url', video_url: { url: a.dataUrl } };
  return { type: 'image_url', image_url: { url: a.dataUrl } };
}

type MediaEntry = RenderedMedia & { type: 'document' | 'video' };

/** The server's `glimpse_media` field checked, or undefined when it is not what glimpse sends. */
export function serverMedia(field: unknown): MediaEntry[] | undefined {
  if (!Array.isArray(field)) return undefined;
  const out: MediaEntry[] = [];
  for (const e of field as Array<Record<string, unknown>>) {
    const type = e?.type;
    const count = type === 'document' ? e.pages : e?.frames;
    if ((type !== 'document' && type !== 'video') || typeof count !== 'number') return undefined;
    if (typeof e.width !== 'number' || typeof e.height !== 'number') return undefined;
    const thumbs = Array.isArray(e.thumbnails) ? e.thumbnails : [];
    out.push({
      type,
      count,
      width: e.width,
      height: e.height,
      ...(typeof e.fps === 'number' ? { fps: e.fps } : {}),
      // Only images go into an <img>: a data URL of a JPEG, as glimpse makes them.
      thumbnails: thumbs.filter((t): t is string => typeof t === 'string' && t.startsWith('data:image/jpeg;base64,')),
    });
  }
  return out;
}

/**
 * The conversation with each PDF and video attachment given its entry. Entries come in the order
 * the attachments were sent (every turn's, as the whole conversation is sent each time); a video
 * the server passed on whole has no entry, so an entry is taken only by an attachment of its kind.
 */
export function withRendered(messages: Message[], entries: MediaEntry[]): Message[] {
  let next = 0;
  return messages.map((m) => {
    if (m.role !== 'user' || !m.images.some((a) => a.kind)) return m;
    const images = m.images.map((a) => {
      const e = entries[next];
      if (!a.kind || !a.dataUrl || !e || e.type !== a.kind) return a;
      next += 1;
      const { type: _type, ...rendered } = e;
      return { ...a, rendered };
    });
    return { ...m, images };
  });
}
