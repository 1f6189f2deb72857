/** One assistant answer in the conversation: status, thinking, the answer, its boxes and stats. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Box } from './boxes';
import type { Failure } from './client';
import type { Translate } from './i18n';
import { renderAnswer, renderPlain } from './markdown';
import type { AssistantMessage, Stats } from './store';
import { splitThinking } from './think';

const BOX_COLORS = ['#ef4444', '#22c55e', '#3b82f6', '#f59e0b', '#a855f7', '#06b6d4', '#ec4899', '#84cc16'];

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
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

export function AssistantView(props: {
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
