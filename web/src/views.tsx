import { AssistantView } from './assistant-view';
import { imageForAnswer } from './conversation';
import type { Translate } from './i18n';
import { formatBytes, type Attachment } from './images';
import { MediaChip, MediaStrip, attachmentSizeText } from './media-chip';
import type { Message, Settings, UserMessage } from './store';

export function AttachmentStrip(props: { t: Translate; attachments: Attachment[]; onRemove(id: string): void }) {
  const { t, attachments } = props;
  if (!attachments.length) return null;
  return (
    <ul class="attachments" data-testid="attachments">
      {attachments.map((a) => (
        <li key={a.id} class="attachment" data-testid="attachment">
          {a.kind ? <MediaChip t={t} a={a} /> : <img src={a.dataUrl} alt={a.name} />}
          <div class="attachment-meta">
            <span class="attachment-name" title={a.name}>
              {a.name}
            </span>
            <span class="attachment-size" data-testid="attachment-size">
              {attachmentSizeText(t, a)}
            </span>
            {(a.width !== a.originalWidth || a.height !== a.originalHeight) && (
              <span class="attachment-orig">{t('resizedFrom', { w: a.originalWidth, h: a.originalHeight })}</span>
            )}
          </div>
          <button
            type="button"
            class="remove"
            aria-label={`${t('removeImage')}: ${a.name}`}
            onClick={() => props.onRemove(a.id)}
            data-testid="remove-attachment"
          >
            ×
          </button>
        </li>
      ))}
    </ul>
  );
}

function UserView(props: { t: Translate; message: UserMessage }) {
  const m = props.message;
  return (
    <article class="msg user" aria-label={props.t('you')} data-testid="user-message">
      {m.images.length > 0 && (
        <div class="msg-images">
          {m.images.map((img) =>
            img.kind ? (
              <MediaChip key={img.id} t={props.t} a={img} />
            ) : img.dataUrl ? (
              <img
                key={img.id}
                src={img.dataUrl}
                alt={img.name}
                title={`${img.name} · ${img.width}×${img.height} · ${formatBytes(img.bytes)}`}
              />
            ) : (
              <span key={img.id} class="img-missing">
                [{img.name}]
              </span>
            ),
          )}
        </div>
      )}
      {m.images.map((img) => img.rendered && <MediaStrip key={img.id} t={props.t} a={img} />)}
      {m.text && <div class="msg-text">{m.text}</div>}
    </article>
  );
}

export function MessageList(props: {
  t: Translate;
  messages: Message[];
  busy: boolean;
  stallSeconds: number;
  onRedo(index: number): void;
}) {
  const { messages } = props;
  return (
    <div class="messages" data-testid="messages">
      {messages.map((m, i) =>
        m.role === 'user' ? (
          <UserView key={m.id} t={props.t} message={m} />
        ) : (
          <AssistantView
            key={m.id}
            t={props.t}
            message={m}
            image={imageForAnswer(messages, i)}
            isLast={i === messages.length - 1}
            busy={props.busy}
            stallSeconds={props.stallSeconds}
            onRedo={() => props.onRedo(i)}
          />
        ),
      )}
    </div>
  );
}

function NumberField(props: {
  id: string;
  label: string;
  value: number;
  min: number;
  max: number;
  step: number;
  onChange(v: number): void;
  slider?: boolean;
}) {
  const set = (raw: string) => {
    const v = Number(raw);
    if (raw !== '' && Number.isFinite(v)) props.onChange(Math.min(props.max, Math.max(props.min, v)));
  };
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <div class="field-row">
        {props.slider && (
          <input
            type="range"
            aria-label={props.label}
            min={props.min}
            max={props.max}
            step={props.step}
            value={props.value}
            onInput={(e) => set((e.target as HTMLInputElement).value)}
          />
        )}
        <input
          id={props.id}
          type="number"
          min={props.min}
          max={props.max}
          step={props.step}
          value={props.value}
          onChange={(e) => set((e.target as HTMLInputElement).value)}
        />
      </div>
    </div>
  );
}

export function SettingsPanel(props: {
  t: Translate;
  settings: Settings;
  update(p: Partial<Settings>): void;
  needApiKey: boolean;
  onClose(): void;
}) {
  const { t, settings: s, update } = props;
  return (
    <aside class="settings" id="settings" aria-label={t('settings')} data-testid="settings">
      <div class="settings-head">
        <h2>{t('settings')}</h2>
        <button type="button" class="ghost" onClick={props.onClose} aria-label={t('closeSettings')}>
          ×
        </button>
      </div>
      {(props.needApiKey || s.apiKey) && (
        <div class="field">
          <label for="api-key">{t('apiKey')}</label>
          {props.needApiKey && <p class="hint warn">{t('apiKeyNeeded')}</p>}
          <input
            id="api-key"
            type="password"
            autocomplete="off"
            value={s.apiKey}
            placeholder={t('apiKeyPlaceholder')}
            onChange={(e) => update({ apiKey: (e.target as HTMLInputElement).value.trim() })}
            data-testid="api-key"
          />
        </div>
      )}
      <div class="field">
        <label for="system-prompt">{t('systemPrompt')}</label>
        <textarea
          id="system-prompt"
          rows={3}
          value={s.systemPrompt}
          placeholder={t('systemPromptPlaceholder')}
          onInput={(e) => update({ systemPrompt: (e.target as HTMLTextAreaElement).value })}
        />
      </div>
      <NumberField
        id="temperature"
        label={t('temperature')}
        value={s.temperature}
        min={0}
        max={2}
        step={0.05}
        slider
        onChange={(v) => update({ temperature: v })}
      />
      <NumberField
        id="top-p"
        label={t('topP')}
        value={s.topP}
        min={0.01}
        max={1}
        step={0.01}
        slider
        onChange={(v) => update({ topP: v })}
      />
      <NumberField
        id="max-tokens"
        label={t('maxTokens')}
        value={s.maxTokens}
        min={1}
        max={32768}
        step={1}
        onChange={(v) => update({ maxTokens: Math.round(v) })}
      />
      <NumberField
        id="stall-seconds"
        label={t('stallSeconds')}
        value={s.stallSeconds}
        min={1}
        max={600}
        step={1}
        onChange={(v) => update({ stallSeconds: v })}
      />
      <div class="field">
        <label for="theme-select">{t('theme')}</label>
        <select
          id="theme-select"
          value={s.theme}
          onChange={(e) => update({ theme: (e.target as HTMLSelectElement).value as Settings['theme'] })}
        >
          <option value="system">{t('themeSystem')}</option>
          <option value="light">{t('themeLight')}</option>
          <option value="dark">{t('themeDark')}</option>
        </select>
      </div>
    </aside>
  );
}
