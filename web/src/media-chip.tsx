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
