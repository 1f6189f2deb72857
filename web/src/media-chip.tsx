/** How an attached PDF or video shows where an image would show its thumbnail: a chip with its kind. */
import type { Translate } from './i18n';
import { formatBytes, type Attachment } from './images';

const kindLabel = (t: Translate, a: Attachment): string => (a.kind === 'video' ? t('kindVideo') : t('kindDocument'));

export function MediaChip(props: { t: Translate; a: Attachment }) {
  const { t, a } = props;
  return (
    <span
      class={`media-chip media-${a.kind ?? 'image'}`}
      data-testid="media-chip"
      data-kind={a.kind}
      title={`${a.name} · ${formatBytes(a.bytes)}`}
    >
      <span aria-hidden="true">{a.kind === 'video' ? '▶' : '📄'}</span> {kindLabel(t, a)}
    </span>
  );
}

/** The line under an attachment's name: the size an image is sent at, or that a PDF or video goes whole. */
export function attachmentSizeText(t: Translate, a: Attachment): string {
  return a.kind
    ? t('sentWhole', { kind: kindLabel(t, a), size: formatBytes(a.bytes) })
    : t('willSend', { w: a.width, h: a.height, size: formatBytes(a.bytes) });
}

/** What the server made of a PDF or video: "12 pages, shown at 644×840 px" and a strip of its pages or frames. */
export function MediaStrip(props: { t: Translate; a: Attachment }) {
  const { t, a } = props;
  const r = a.rendered;
  if (!r) return null;
  const size = { n: r.count, w: r.width, h: r.height };
  const summary =
    a.kind === 'video'
      ? t(r.count === 1 ? 'mediaFrame' : 'mediaFrames', { ...size, fps: r.fps ?? '?' })
      : t(r.count === 1 ? 'mediaPage' : 'mediaPages', size);
  const unit = a.kind === 'video' ? t('mediaFrameN') : t('mediaPageN');
  return (
    <figure class="media-strip" data-testid="media-strip" data-kind={a.kind}>
      <figcaption data-testid="media-summary">
        <span class="media-strip-name">{a.name}</span> · {summary}
      </figcaption>
      {r.thumbnails.length > 0 && (
        <div class="media-thumbs">
          {r.thumbnails.map((src, i) => (
            <img key={i} src={src} alt={`${unit} ${i + 1}`} title={`${unit} ${i + 1}`} data-testid="media-thumb" />
          ))}
        </div>
      )}
    </figure>
  );
}
