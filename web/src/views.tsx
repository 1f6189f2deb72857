import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Box } from './boxes';
import type { Failure } from './client';
import { imageForAnswer } from './conversation';
import type { Translate } from './i18n';
import { formatBytes, type Attachment } from './images';
import { MediaChip, attachmentSizeText } from './media-chip';
import { renderAnswer, renderPlain } from './markdown';
import type { AssistantMessage, Message, Settings, Stats, UserMessage } from './store';
import { splitThinking } from './think';

const BOX_COLORS = ['#ef4444', '#22c55e', '#3b82f6', '#f59e0b', '#a855f7', '#06b6d4', '#ec4899', '#84cc16'];

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

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
      {m.text && <div class="msg-text">{m.text}</div>}
    </article>
  );
}

/** The image with its boxes drawn over it; a 0..1000 viewBox maps GLM's normalized coordinates directly. */
export function BoxedImage(props: { src: string; boxes: Box[]; label: string }) {
  return (
    <figure class="boxed" data-testid="boxed-image">
      <div class="boxed-inner">
        <img src={props.src} alt={props.label} />
        <svg viewBox="0 0 1000 1000" preserveAspectRatio="none" aria-hidden="true" data-testid="box-overlay">
          {props.boxes.map((b) => {
            const color = BOX_COLORS[(b.index - 1) % BOX_COLORS.length];
            return (
              <g key={b.index} class="box" data-box={b.index}>
                <rect
                  x={b.x1}
                  y={b.y1}
                  width={b.x2 - b.x1}
                  height={b.y2 - b.y1}
                  fill="none"
                  stroke={color}
                  stroke-width="4"
                  vector-effect="non-scaling-stroke"
                />
              </g>
            );
          })}
        </svg>
        {props.boxes.map((b) => (
          <span
            key={b.index}
            class="box-label"
            data-box={b.index}
            ref={(el) => {
              // Labels are HTML (crisp text at any aspect ratio); positioned through CSSOM, which CSP allows.
              if (el) {
                el.style.left = `${b.x1 / 10}%`;
                el.style.top = `${b.y1 / 10}%`;
                el.style.background = BOX_COLORS[(b.index - 1) % BOX_COLORS.length] ?? '#ef4444';
              }
            }}
          >
            {b.index}
          </span>
        ))}
      </div>
      <figcaption>{props.label}</figcaption>
    </figure>
  );
}

/** Counts down a Retry-After from when the failure was shown. */
function RetryAfter(props: { t: Translate; seconds: number }) {
  const [left, setLeft] = useState(Math.ceil(props.seconds));
  useEffect(() => {
    if (left <= 0) return;
    const timer = setTimeout(() => setLeft((n) => n - 1), 1000);
    return () => clearTimeout(timer);
  }, [left]);
  return left > 0 ? <span class="retry-after">{props.t('errRetryAfter', { n: left })}</span> : null;
}

function failureText(t: Translate, f: Failure, stallSeconds: number): string {
  const code = f.code ?? (f.status ? `HTTP ${f.status}` : 'error');
  let s: string;
  switch (f.kind) {
    case 'unreachable':
      s = t('errUnreachable');
      break;
    case 'interrupted':
      s = t('errInterrupted');
      break;
    case 'stalled':
      s = t('errStalled', { n: stallSeconds });
      break;
    case 'timeout':
      s = t('errTimeout', { code });
      break;
    case 'rate_limited':
      s = t('errRateLimited', { code });
      break;
    case 'unauthorized':
      s = t('errUnauthorized');
      break;
    case 'loading':
      s = t('errLoading');
      break;
    case 'unavailable':
      s = t('errUnavailable', { code });
      break;
    default:
      s = t('errGeneric', { code });
  }
  return s;
}

function StatsLine(props: { t: Translate; stats: Stats }) {
  const { t, stats } = props;
  const parts: string[] = [];
  if (stats.ttftMs !== undefined) parts.push(t('ttft', { v: seconds(stats.ttftMs) }));
  if (stats.tokensPerSecond !== undefined) parts.push(t('tps', { v: stats.tokensPerSecond.toFixed(1) }));
  parts.push(t('total', { v: seconds(stats.totalMs) }));
  if (stats.completionTokens !== undefined) parts.push(t('tokens', { v: stats.completionTokens }));
  return (
    <span class="stats" data-testid="stats">
      {parts.join(' · ')}
    </span>
  );
}

/** A message whose answer is still on its way. */
function isLive(status: AssistantMessage['status']): boolean {
  return (
    status === 'connecting' ||
    status === 'waiting' ||
    status === 'queued' ||
    status === 'thinking' ||
    status === 'streaming'
  );
}

function StatusBadge(props: { t: Translate; message: AssistantMessage }) {
  const { t, message: m } = props;
  const text =
    m.status === 'connecting'
      ? t('stateConnecting')
      : m.status === 'waiting'
        ? t('stateWaiting')
        : m.status === 'queued'
          ? m.queuePosition
            ? t('stateQueuedAt', { n: m.queuePosition })
            : t('stateQueued')
          : m.status === 'thinking'
            ? t('stateThinking')
            : m.status === 'streaming'
              ? t('stateStreaming')
              : m.status === 'stopped'
                ? m.note === 'reload'
                  ? t('interruptedByReload')
                  : t('stateStopped')
                : m.status === 'done'
                  ? t('stateDone')
                  : '';
  if (!text) return null;
  const live = isLive(m.status);
  return (
    <span class={`badge badge-${m.status}`} role="status" data-testid="status" data-status={m.status}>
      {live && <span class="spinner" aria-hidden="true" />}
      {text}
    </span>
  );
}

function copyText(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) return navigator.clipboard.writeText(text);
  const ta = document.createElement('textarea');
  ta.value = text;
  document.body.appendChild(ta);
  ta.select();
  document.execCommand('copy');
  ta.remove();
  return Promise.resolve();
}

function CopyButton(props: { t: Translate; text: string }) {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const timer = setTimeout(() => setCopied(false), 1500);
    return () => clearTimeout(timer);
  }, [copied]);
  return (
    <button
      type="button"
      class="ghost small"
      data-testid="copy-answer"
      onClick={() => void copyText(props.text).then(() => setCopied(true))}
    >
      {copied ? props.t('copied') : props.t('copy')}
    </button>
  );
}

function onAnswerClick(t: Translate, e: MouseEvent) {
  const btn = (e.target as HTMLElement).closest('button.copy-btn');
  if (!btn) return;
  const code = btn.closest('.code-block')?.querySelector('pre code');
  if (!code) return;
  void copyText(code.textContent ?? '').then(() => {
    btn.textContent = t('copied');
    setTimeout(() => (btn.textContent = t('copy')), 1500);
  });
}

function AssistantView(props: {
  t: Translate;
  message: AssistantMessage;
  image: { dataUrl: string } | null;
  isLast: boolean;
  busy: boolean;
  stallSeconds: number;
  onRedo(): void;
}) {
  const { t, message: m } = props;
  const live = isLive(m.status);
  const split = useMemo(() => splitThinking(m.content, live), [m.content, live]);
  const thinking = [m.reasoning.trim(), split.thinking].filter(Boolean).join('\n\n');
  const rendered = useMemo(() => renderAnswer(split.answer, { copy: t('copy'), image: t('image') }), [split.answer, t]);
  const boxes = m.boxes ?? rendered.boxes; // the server's once done; from the text while it streams
  const thinkingNow = live && (split.thinkingOpen || (m.status === 'thinking' && !split.answer));
  // Open while the model thinks, folded once it answers, unless the reader toggled it themselves.
  const [userOpen, setUserOpen] = useState<boolean | null>(null);
  return (
    <article
      class={`msg assistant status-${m.status}`}
      aria-label={t('assistant')}
      aria-busy={live}
      data-testid="assistant-message"
      data-status={m.status}
    >
      <div class="msg-head">
        <span class="msg-model">{m.model}</span>
        <StatusBadge t={t} message={m} />
      </div>
      {thinking && (
        <details
          class="thinking"
          open={userOpen ?? thinkingNow}
          data-testid="thinking"
          onToggle={(e) => {
            const open = (e.currentTarget as HTMLDetailsElement).open;
            if (open !== (userOpen ?? thinkingNow)) setUserOpen(open);
          }}
        >
          <summary>
            {thinkingNow && <span class="spinner" aria-hidden="true" />}
            {thinkingNow ? t('stateThinking') : t('thinking')}
          </summary>
          <div class="thinking-body" dangerouslySetInnerHTML={{ __html: renderPlain(thinking) }} />
        </details>
      )}
      {split.answer && (
        <div
          class="answer md"
          data-testid="answer"
          onClick={(e) => onAnswerClick(t, e as unknown as MouseEvent)}
          dangerouslySetInnerHTML={{ __html: rendered.html }}
        />
      )}
      {boxes.length > 0 && props.image && (
        <BoxedImage src={props.image.dataUrl} boxes={boxes} label={t('boxesOn', { n: boxes.length })} />
      )}
      {m.status === 'failed' && m.failure && (
        <div class="failure" role="alert" data-testid="failure" data-kind={m.failure.kind}>
          <span class="failure-text">
            {failureText(t, m.failure, props.stallSeconds)}
            {m.failure.retryAfter !== undefined && (
              <>
                {' '}
                <RetryAfter t={t} seconds={m.failure.retryAfter} />
              </>
            )}
          </span>
          {m.failure.message && (m.failure.kind === 'error' || m.failure.kind === 'unavailable') && (
            <span class="failure-detail">{m.failure.message}</span>
          )}
          <button type="button" class="secondary" onClick={props.onRedo} disabled={props.busy} data-testid="retry">
            {t('retry')}
          </button>
        </div>
      )}
      {m.status === 'done' && m.note === 'length' && (
        <p class="note" data-testid="length-note">
          {t('cutAtMaxTokens')}
        </p>
      )}
      <div class="msg-foot">
        {!live && m.stats && <StatsLine t={t} stats={m.stats} />}
        <span class="foot-actions">
          {!live && split.answer && <CopyButton t={t} text={split.answer} />}
          {props.isLast && !live && m.status !== 'failed' && (
            <button
              type="button"
              class="ghost small"
              onClick={props.onRedo}
              disabled={props.busy}
              data-testid="regenerate"
            >
              {t('regenerate')}
            </button>
          )}
        </span>
      </div>
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
