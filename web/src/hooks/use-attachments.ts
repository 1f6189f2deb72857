/** The images waiting to be sent with the next message: added from files (checked and shrunk), removed, cleared. */
import { useCallback, useState } from 'preact/hooks';
import type { UiConfig } from '../client';
import type { Translate } from '../i18n';
import { ImageRejected, formatBytes, type Attachment } from '../images';
import { prepareAttachment } from '../media';

/** Why an image was refused, in the reader's language. */
export function rejectionText(t: Translate, e: ImageRejected): string {
  const d = e.detail;
  switch (e.reason) {
    case 'not_image':
      return t('imgNotImage', { name: e.fileName });
    case 'file_too_big':
      return t('imgTooBig', { name: e.fileName, size: formatBytes(d.bytes ?? 0), limit: formatBytes(d.limit ?? 0) });
    case 'too_many_pixels':
      return t('imgTooManyPixels', { name: e.fileName, w: d.width ?? 0, h: d.height ?? 0 });
    case 'encoded_too_big':
      return t('imgEncodedTooBig', {
        name: e.fileName,
        size: formatBytes(d.bytes ?? 0),
        limit: formatBytes(d.limit ?? 0),
      });
    default:
      return t('imgUnreadable', { name: e.fileName });
  }
}

/** `notify` hears why each refused file was refused. */
export function useAttachments(uiConfig: UiConfig, t: Translate, notify: (...texts: string[]) => void) {
  const [attachments, setAttachments] = useState<Attachment[]>([]);

  const addFiles = useCallback(
    async (files: File[]) => {
      let room = uiConfig.maxImagesPerMessage - attachments.length;
      const errors: string[] = [];
      const added: Attachment[] = [];
      for (const f of files) {
        if (room <= 0) {
          errors.push(t('imgTooMany', { n: uiConfig.maxImagesPerMessage }));
          break;
        }
        try {
          added.push(await prepareAttachment(f, uiConfig));
          room -= 1;
        } catch (e) {
          errors.push(e instanceof ImageRejected ? rejectionText(t, e) : t('imgUnreadable', { name: f.name }));
        }
      }
      if (added.length) setAttachments((a) => [...a, ...added]);
      notify(...errors);
    },
    [attachments.length, uiConfig, t, notify],
  );
  const remove = useCallback((id: string) => setAttachments((a) => a.filter((x) => x.id !== id)), []);
  const clear = useCallback(() => setAttachments([]), []);

  return { attachments, addFiles, remove, clear };
}
