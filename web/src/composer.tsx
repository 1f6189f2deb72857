/** The footer: notices, the images to send, the file picker, the prompt, and Send or Stop. */
import { useRef } from 'preact/hooks';
import type { RefObject } from 'preact';
import type { Notice } from './hooks/use-notices';
import type { Translate } from './i18n';
import type { Attachment } from './images';
import type { ModelTask } from './client';
import { AttachmentStrip } from './views';

export interface ComposerProps {
  t: Translate;
  notices: Notice[];
  onDismissNotice: (id: string) => void;
  attachments: Attachment[];
  onRemoveAttachment: (id: string) => void;
  addFiles: (files: File[]) => Promise<void>;
  draft: string;
  setDraft: (text: string) => void;
  inputRef: RefObject<HTMLTextAreaElement | null>;
  busy: boolean;
  onSend: () => void;
  onStop: () => void;
  /** The model's one-click tasks (its profile's prompts); empty for a model without a profile. */
  tasks: ModelTask[];
  onTask: (task: ModelTask) => void;
}

export function Composer({
  t,
  notices,
  onDismissNotice,
  attachments,
  onRemoveAttachment,
  addFiles,
  draft,
  setDraft,
  inputRef,
  busy,
  onSend,
  onStop,
  tasks,
  onTask,
}: ComposerProps) {
  const fileRef = useRef<HTMLInputElement>(null);
  const onKeyDown = (e: KeyboardEvent) => {
    // isComposing: Enter that confirms a Chinese IME candidate must not send.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      onSend();
    }
  };
  return (
    <footer class="composer">
      {notices.length > 0 && (
        <ul class="notices" role="alert" data-testid="notices">
          {notices.map((n) => (
            <li key={n.id}>
              <span>{n.text}</span>
              <button type="button" class="ghost small" aria-label={t('dismiss')} onClick={() => onDismissNotice(n.id)}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <AttachmentStrip t={t} attachments={attachments} onRemove={onRemoveAttachment} />
      {tasks.length > 0 && (
        <div class="tasks" role="group" aria-label={t('tasks')} data-testid="tasks">
          {tasks.map((task) => (
            <button
              type="button"
              class="ghost small task"
              key={task.prompt}
              title={task.prompt}
              disabled={busy}
              onClick={() => onTask(task)}
              data-testid="task"
            >
              {task.label}
            </button>
          ))}
        </div>
      )}
      <div class="input-row">
        <input
          ref={fileRef}
          type="file"
          accept="image/*,application/pdf,.pdf,video/mp4,video/webm,video/quicktime,video/x-matroska,.mkv,.mov"
          multiple
          class="sr-only"
          id="file-input"
          data-testid="file-input"
          tabIndex={-1}
          onChange={(e) => {
            const input = e.target as HTMLInputElement;
            const files = Array.from(input.files ?? []);
            input.value = '';
            if (files.length) void addFiles(files);
          }}
        />
        <button
          type="button"
          class="attach"
          aria-label={t('attach')}
          title={t('attach')}
          onClick={() => fileRef.current?.click()}
          data-testid="attach"
        >
          <svg viewBox="0 0 24 24" aria-hidden="true">
            <path d="M21 12.5l-8.5 8.5a5.5 5.5 0 01-7.8-7.8l9-9a3.7 3.7 0 015.2 5.2l-9 9a1.8 1.8 0 01-2.6-2.6l8.3-8.3" />
          </svg>
        </button>
        <label class="sr-only" for="prompt">
          {t('inputLabel')}
        </label>
        <textarea
          id="prompt"
          ref={inputRef}
          rows={1}
          value={draft}
          placeholder={t('inputPlaceholder')}
          onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)}
          onKeyDown={onKeyDown}
          data-testid="prompt"
          aria-describedby="keys-hint"
        />
        {busy ? (
          <button type="button" class="primary stop" onClick={onStop} data-testid="stop" aria-keyshortcuts="Escape">
            {t('stop')}
          </button>
        ) : (
          <button type="button" class="primary" onClick={onSend} data-testid="send" aria-keyshortcuts="Enter">
            {t('send')}
          </button>
        )}
      </div>
      <p class="keys-hint" id="keys-hint">
        {t('keysHint')}
      </p>
    </footer>
  );
}
