import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { DEFAULT_UI_CONFIG, HttpFailure, getHealth, type Health, getUiConfig, listModels, streamChat, type Failure, type ModelEntry, type UiConfig } from './client';
import { toWireMessages } from './conversation';
import { detectLang, translator, type Lang, type Translate } from './i18n';
import { ImageRejected, formatBytes, prepareImage, type Attachment } from './images';
import { DEFAULT_SETTINGS, loadConversation, loadSettings, saveConversation, saveSettings, type AssistantMessage, type Message, type Settings, type UserMessage } from './store';
import { AttachmentStrip, MessageList, SettingsPanel } from './views';

type ServerState = 'unknown' | 'up' | 'loading' | 'unhealthy' | 'down';

let idSeq = 0;
function newId(prefix: string): string {
  idSeq += 1;
  return `${prefix}-${Date.now().toString(36)}-${idSeq}`;
}

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
      return t('imgEncodedTooBig', { name: e.fileName, size: formatBytes(d.bytes ?? 0), limit: formatBytes(d.limit ?? 0) });
    default:
      return t('imgUnreadable', { name: e.fileName });
  }
}

export function App() {
  const [settings, setSettings] = useState<Settings>(loadSettings);
  const [messages, setMessages] = useState<Message[]>(loadConversation);
  const [draft, setDraft] = useState('');
  const [attachments, setAttachments] = useState<Attachment[]>([]);
  const [notices, setNotices] = useState<Array<{ id: string; text: string }>>([]);
  const [models, setModels] = useState<ModelEntry[]>([]);
  const [server, setServer] = useState<ServerState>('unknown');
  const [health, setHealthInfo] = useState<Health | null>(null);
  const [uiConfig, setUiConfig] = useState<UiConfig>(DEFAULT_UI_CONFIG);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [needApiKey, setNeedApiKey] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [busy, setBusy] = useState(false);
  const abortRef = useRef<AbortController | null>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const listRef = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);

  const lang: Lang = settings.lang ?? detectLang(navigator.languages?.length ? navigator.languages : [navigator.language]);
  const t = useMemo(() => translator(lang), [lang]);

  const update = useCallback((patch: Partial<Settings>) => setSettings((s) => ({ ...s, ...patch })), []);

  // Persistence: settings at once; the conversation on every change (streaming included, so a reload mid-answer keeps what arrived).
  // Layout effects run inside the render's commit, so what is on screen is already saved: a reload
  // right after a click cannot lose it (a plain effect may still be waiting for the next frame).
  useLayoutEffect(() => saveSettings(settings), [settings]);
  // While an answer streams the conversation changes every frame: save at most once a second then, at once otherwise.
  const storageWarned = useRef(false);
  useLayoutEffect(() => {
    const save = () => {
      const dropped = saveConversation(messages);
      if (dropped && !storageWarned.current) {
        storageWarned.current = true;
        setNotices((n) => [...n, { id: newId('n'), text: t('storageFull', { n: dropped }) }]);
      }
    };
    if (!busy) {
      save();
      return;
    }
    const timer = setTimeout(save, 1000);
    return () => clearTimeout(timer);
  }, [messages, busy, t]);

  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = `glimpse · ${t('appTagline')}`;
  }, [lang, t]);
  useEffect(() => {
    if (settings.theme === 'system') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = settings.theme;
  }, [settings.theme]);

  useEffect(() => {
    void getUiConfig().then(setUiConfig);
  }, []);

  const refreshModels = useCallback(async (apiKey: string) => {
    try {
      const list = await listModels(apiKey || undefined);
      setModels(list);
      setNeedApiKey(false);
      setSettings((s) => (s.model && list.some((m) => m.id === s.model) ? s : { ...s, model: list[0]?.id ?? s.model }));
    } catch (e) {
      if (e instanceof HttpFailure && e.failure.kind === 'unauthorized') {
        setNeedApiKey(true);
        setServer('up');
      }
    }
  }, []);

  useEffect(() => {
    void refreshModels(settings.apiKey);
  }, [settings.apiKey, refreshModels]);

  // Health: shown in the header so "server down" is visible before anyone presses Send.
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout>;
    const poll = async () => {
      const h = await getHealth();
      if (stopped) return;
      if (h) setHealthInfo(h);
      setServer((prev) => {
        const next: ServerState = !h ? 'down' : h.status === 'unhealthy' ? 'unhealthy' : h.model_loaded === false || h.status === 'loading' ? 'loading' : 'up';
        if (prev === 'down' && next !== 'down') void refreshModels(settings.apiKey);
        return next;
      });
      // Poll faster while the model loads or the server is away, so the page notices the moment it is usable.
      timer = setTimeout(poll, h && h.status === 'healthy' ? 10_000 : 2_000);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [refreshModels, settings.apiKey]);

  const patchAssistant = useCallback((id: string, patch: Partial<AssistantMessage> | ((m: AssistantMessage) => Partial<AssistantMessage>)) => {
    setMessages((ms) => ms.map((m) => (m.id === id && m.role === 'assistant' ? { ...m, ...(typeof patch === 'function' ? patch(m) : patch) } : m)));
  }, []);

  /** Streams one answer for the conversation `history` into a new assistant message. */
  const generate = useCallback(
    async (history: Message[]) => {
      const controller = new AbortController();
      abortRef.current = controller;
      setBusy(true);
      stickToBottom.current = true;
      const id = newId('a');
      const model = settings.model || models[0]?.id || 'default';
      const placeholder: AssistantMessage = { id, role: 'assistant', model, content: '', reasoning: '', status: 'connecting' };
      setMessages([...history, placeholder]);

      const started = performance.now();
      let firstTokenAt: number | undefined;
      let deltas = 0;
      // Tokens arrive faster than the screen refreshes: gather them and paint once per frame.
      let pendingContent = '';
      let pendingReasoning = '';
      let frame = 0;
      const flush = () => {
        frame = 0;
        const c = pendingContent;
        const r = pendingReasoning;
        pendingContent = '';
        pendingReasoning = '';
        if (!c && !r) return;
        patchAssistant(id, (m) => {
          const content = m.content + c;
          const reasoning = m.reasoning + r;
          const inThink = /<think>(?![\s\S]*<\/think>)/.test(content) || (!c && !!r && !m.content);
          return { content, reasoning, status: inThink || (!content.trim() && reasoning) ? 'thinking' : 'streaming' };
        });
      };
      const schedule = () => {
        if (!frame) frame = requestAnimationFrame(flush);
      };
      const onToken = () => {
        deltas += 1;
        if (firstTokenAt === undefined) firstTokenAt = performance.now();
      };

      const outcome = await streamChat({
        body: {
          model,
          messages: toWireMessages(history, settings.systemPrompt, uiConfig.maxImagesPerMessage),
          temperature: settings.temperature,
          top_p: settings.topP,
          max_tokens: settings.maxTokens,
        },
        apiKey: settings.apiKey || undefined,
        signal: controller.signal,
        // Left at its default, the stall limit follows the server's heartbeat interval (three missed heartbeats).
        stallMs: (settings.stallSeconds === DEFAULT_SETTINGS.stallSeconds ? Math.max(settings.stallSeconds, 3 * uiConfig.heartbeatSeconds) : Math.max(1, settings.stallSeconds)) * 1000,
        callbacks: {
          onAccepted: () => patchAssistant(id, (m) => (m.status === 'connecting' ? { status: 'waiting' } : {})),
          onQueued: (n) => patchAssistant(id, (m) => (m.status === 'connecting' || m.status === 'waiting' || m.status === 'queued' ? { status: 'queued', queuePosition: n } : {})),
          onAdmitted: () => patchAssistant(id, (m) => (m.status === 'queued' ? { status: 'waiting', queuePosition: undefined } : {})),
          onReasoning: (text) => {
            onToken();
            pendingReasoning += text;
            schedule();
          },
          onContent: (text) => {
            onToken();
            pendingContent += text;
            schedule();
          },
        },
      });
      if (frame) cancelAnimationFrame(frame);
      flush();
      const end = performance.now();
      const completionTokens = outcome.usage?.completionTokens ?? (deltas || undefined);
      const genSeconds = firstTokenAt !== undefined ? (end - firstTokenAt) / 1000 : 0;
      const stats = {
        ttftMs: firstTokenAt !== undefined ? firstTokenAt - started : undefined,
        totalMs: end - started,
        completionTokens,
        tokensPerSecond: completionTokens && genSeconds > 0.05 ? completionTokens / genSeconds : undefined,
      };
      if (outcome.kind === 'done') patchAssistant(id, { status: 'done', stats, queuePosition: undefined, ...(outcome.finishReason === 'length' ? { note: 'length' } : {}) });
      else if (outcome.kind === 'stopped') patchAssistant(id, { status: 'stopped', stats, queuePosition: undefined });
      else {
        const failure: Failure = outcome.failure;
        patchAssistant(id, { status: 'failed', failure, stats, queuePosition: undefined });
        if (failure.kind === 'unauthorized') {
          setNeedApiKey(true);
          setSettingsOpen(true);
        }
        if (failure.kind === 'unreachable') setServer('down');
      }
      if (abortRef.current === controller) abortRef.current = null;
      setBusy(false);
      // Back to typing, unless the reader went somewhere else meanwhile.
      const active = document.activeElement;
      if (!active || active === document.body || (active as HTMLElement).dataset?.testid === 'stop') inputRef.current?.focus();
    },
    [settings, models, patchAssistant, uiConfig.heartbeatSeconds, uiConfig.maxImagesPerMessage],
  );

  const stop = useCallback(() => abortRef.current?.abort(), []);

  const send = useCallback(() => {
    if (busy) return;
    const text = draft.trim();
    if (!text && !attachments.length) {
      setNotices((n) => [...n, { id: newId('n'), text: t('needText') }]);
      return;
    }
    const user: UserMessage = { id: newId('u'), role: 'user', text, images: attachments };
    setDraft('');
    setAttachments([]);
    setNotices([]);
    void generate([...messages, user]);
  }, [busy, draft, attachments, messages, generate, t]);

  /** Regenerate / Retry: drop the answer at `index` (and anything after it) and ask again. */
  const redo = useCallback(
    (index: number) => {
      if (busy) return;
      void generate(messages.slice(0, index));
    },
    [busy, messages, generate],
  );

  const clear = useCallback(() => {
    if (busy) stop();
    if (messages.length && !window.confirm(t('clearConfirm'))) return;
    setMessages([]);
    setAttachments([]);
    setNotices([]);
  }, [busy, messages.length, stop, t]);

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
          added.push(await prepareImage(f, uiConfig));
          room -= 1;
        } catch (e) {
          errors.push(e instanceof ImageRejected ? rejectionText(t, e) : t('imgUnreadable', { name: f.name }));
        }
      }
      if (added.length) setAttachments((a) => [...a, ...added]);
      setNotices((n) => [...n, ...errors.map((text) => ({ id: newId('n'), text }))]);
    },
    [attachments.length, uiConfig, t],
  );

  // Keyboard: Esc stops a generation from anywhere on the page.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        if (abortRef.current) {
          e.preventDefault();
          stop();
        } else if (settingsOpen) setSettingsOpen(false);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [stop, settingsOpen]);

  // Paste and drag-and-drop work anywhere on the page.
  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      const files = Array.from(e.clipboardData?.files ?? []);
      if (!files.length) return;
      e.preventDefault();
      void addFiles(files);
    };
    let depth = 0;
    const hasFiles = (e: DragEvent) => !!e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
    const onEnter = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth += 1;
      setDragging(true);
    };
    const onOver = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    };
    const onLeave = () => {
      depth = Math.max(0, depth - 1);
      if (!depth) setDragging(false);
    };
    const onDrop = (e: DragEvent) => {
      if (!e.dataTransfer) return;
      e.preventDefault();
      depth = 0;
      setDragging(false);
      const files = Array.from(e.dataTransfer.files);
      if (files.length) void addFiles(files);
    };
    document.addEventListener('paste', onPaste);
    window.addEventListener('dragenter', onEnter);
    window.addEventListener('dragover', onOver);
    window.addEventListener('dragleave', onLeave);
    window.addEventListener('drop', onDrop);
    return () => {
      document.removeEventListener('paste', onPaste);
      window.removeEventListener('dragenter', onEnter);
      window.removeEventListener('dragover', onOver);
      window.removeEventListener('dragleave', onLeave);
      window.removeEventListener('drop', onDrop);
    };
  }, [addFiles]);

  // Follow the answer while the reader is at the bottom; leave them alone when they scrolled up.
  useEffect(() => {
    const el = listRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages]);
  const onScroll = () => {
    const el = listRef.current;
    if (el) stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  };

  const onKeyDown = (e: KeyboardEvent) => {
    // isComposing: Enter that confirms a Chinese IME candidate must not send.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      send();
    }
  };

  const serverLabel =
    server === 'down'
      ? t('serverDown')
      : server === 'unhealthy'
        ? `${t('serverUnhealthy')}${health?.reason ? `: ${health.reason}` : ''}`
        : server === 'loading'
          ? t('serverLoading')
          : server === 'up'
            ? t('serverUp')
            : '';

  return (
    <div class="app" data-busy={busy ? 'true' : 'false'}>
      <header class="topbar">
        <div class="brand">
          <svg class="logo" viewBox="0 0 32 32" aria-hidden="true">
            <rect width="32" height="32" rx="7" />
            <circle cx="16" cy="16" r="7" fill="none" stroke-width="3" />
            <circle cx="16" cy="16" r="2.5" />
          </svg>
          <span class="brand-name">glimpse</span>
          <span class={`server-dot server-${server}`} role="status" aria-live="polite" data-testid="server-state" title={serverLabel}>
            <span class="dot" aria-hidden="true" />
            <span class="server-label">{serverLabel}</span>
          </span>
          {health?.simulated && (
            <span class="simulated" title={health.note ?? ''} data-testid="simulated">
              {t('simulated')}
            </span>
          )}
        </div>
        <div class="top-actions">
          <label class="model-pick">
            <span class="sr-only">{t('model')}</span>
            <select aria-label={t('model')} value={settings.model} onChange={(e) => update({ model: (e.target as HTMLSelectElement).value })} data-testid="model-select">
              {models.length === 0 && <option value={settings.model}>{settings.model || t('noModels')}</option>}
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
          </label>
          <button type="button" class="ghost" onClick={() => update({ lang: lang === 'en' ? 'zh' : 'en' })} aria-label={`${t('language')}: ${t('switchLanguage')}`} data-testid="lang-toggle" lang={lang === 'en' ? 'zh-CN' : 'en'}>
            <span class="btn-text">{t('switchLanguage')}</span>
            <span class="btn-icon" aria-hidden="true">{lang === 'en' ? '中' : 'EN'}</span>
          </button>
          <button
            type="button"
            class="ghost icon"
            data-testid="theme-toggle"
            aria-label={`${t('theme')}: ${settings.theme === 'system' ? t('themeSystem') : settings.theme === 'light' ? t('themeLight') : t('themeDark')}`}
            title={`${t('theme')}: ${settings.theme === 'system' ? t('themeSystem') : settings.theme === 'light' ? t('themeLight') : t('themeDark')}`}
            onClick={() => update({ theme: settings.theme === 'system' ? 'light' : settings.theme === 'light' ? 'dark' : 'system' })}
          >
            {settings.theme === 'dark' ? '☾' : settings.theme === 'light' ? '☀' : '◐'}
          </button>
          <button type="button" class="ghost" onClick={clear} data-testid="clear" aria-label={t('clear')} title={t('clear')}>
            <span class="btn-text">{t('clear')}</span>
            <svg class="btn-icon" viewBox="0 0 24 24" aria-hidden="true">
              <path d="M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13" />
            </svg>
          </button>
          <button
            type="button"
            class="ghost"
            aria-expanded={settingsOpen}
            aria-controls="settings"
            aria-label={t('settings')}
            title={t('settings')}
            onClick={() => setSettingsOpen((o) => !o)}
            data-testid="settings-toggle"
          >
            <span class="btn-text">{t('settings')}</span>
            <svg class="btn-icon" viewBox="0 0 24 24" aria-hidden="true">
              <path d="M4 6h10M18 6h2M4 12h4M12 12h8M4 18h12M20 18h0" />
              <circle cx="16" cy="6" r="2" />
              <circle cx="10" cy="12" r="2" />
              <circle cx="18" cy="18" r="2" />
            </svg>
          </button>
        </div>
      </header>

      {settingsOpen && <div class="backdrop" aria-hidden="true" onClick={() => setSettingsOpen(false)} />}
      {settingsOpen && <SettingsPanel t={t} settings={settings} update={update} needApiKey={needApiKey} onClose={() => setSettingsOpen(false)} />}

      <main class="conversation" ref={listRef} onScroll={onScroll} aria-live="off">
        {(server === 'loading' || server === 'unhealthy') && health?.reason && (
          <div class={`banner ${server === 'loading' ? 'banner-info' : ''}`} role="status" data-testid="health-banner">
            {server === 'loading' ? t('serverLoading') : t('serverUnhealthy')}: {health.reason}
          </div>
        )}
        {needApiKey && !settingsOpen && (
          <div class="banner" role="alert">
            {t('apiKeyNeeded')}{' '}
            <button type="button" class="link" onClick={() => setSettingsOpen(true)}>
              {t('settings')}
            </button>
          </div>
        )}
        {messages.length === 0 ? (
          <div class="empty">
            <p class="empty-title">{t('emptyTitle')}</p>
            <p class="empty-hint">{t('emptyHint')}</p>
          </div>
        ) : (
          <MessageList t={t} messages={messages} busy={busy} stallSeconds={settings.stallSeconds} onRedo={redo} />
        )}
      </main>

      <footer class="composer">
        {notices.length > 0 && (
          <ul class="notices" role="alert" data-testid="notices">
            {notices.map((n) => (
              <li key={n.id}>
                <span>{n.text}</span>
                <button type="button" class="ghost small" aria-label={t('dismiss')} onClick={() => setNotices((all) => all.filter((x) => x.id !== n.id))}>
                  ×
                </button>
              </li>
            ))}
          </ul>
        )}
        <AttachmentStrip t={t} attachments={attachments} onRemove={(id) => setAttachments((a) => a.filter((x) => x.id !== id))} />
        <div class="input-row">
          <input
            ref={fileRef}
            type="file"
            accept="image/*"
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
          <button type="button" class="attach" aria-label={t('attach')} title={t('attach')} onClick={() => fileRef.current?.click()} data-testid="attach">
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
            <button type="button" class="primary stop" onClick={stop} data-testid="stop" aria-keyshortcuts="Escape">
              {t('stop')}
            </button>
          ) : (
            <button type="button" class="primary" onClick={send} data-testid="send" aria-keyshortcuts="Enter">
              {t('send')}
            </button>
          )}
        </div>
        <p class="keys-hint" id="keys-hint">
          {t('keysHint')}
        </p>
      </footer>

      {dragging && (
        <div class="drop-overlay" aria-hidden="true">
          <div>{t('dropHere')}</div>
        </div>
      )}
    </div>
  );
}

export type { Failure };
