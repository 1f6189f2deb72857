/**
 * The page: puts together the reader's settings, what is known of the server, the conversation
 * and the answer being asked for (hooks/), and lays them out (top bar, messages, composer).
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { modelTasks, type Failure, type ModelTask } from './client';
import { Composer } from './composer';
import { useAttachments } from './hooks/use-attachments';
import { useConversation, useSaveConversation } from './hooks/use-conversation';
import { useFollowScroll } from './hooks/use-follow-scroll';
import { useGeneration } from './hooks/use-generation';
import { useNotices } from './hooks/use-notices';
import { usePageFiles } from './hooks/use-page-files';
import { useServer } from './hooks/use-server';
import { useSettings } from './hooks/use-settings';
import { newId } from './ids';
import type { UserMessage } from './store';
import { TopBar } from './top-bar';
import { MessageList, SettingsPanel } from './views';
import { BatchesPanel } from './batches';

export function App() {
  const { settings, setSettings, update, lang, t } = useSettings();
  const { uiConfig, models, server, setServer, health, needApiKey, setNeedApiKey } = useServer(
    settings.apiKey,
    setSettings,
  );
  const [messages, setMessages] = useConversation();
  const { notices, add: notify, dismiss: dismissNotice, clear: clearNotices } = useNotices();
  const {
    attachments,
    addFiles,
    remove: removeAttachment,
    clear: clearAttachments,
  } = useAttachments(uiConfig, t, notify);
  const [draft, setDraft] = useState('');
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [batchesOpen, setBatchesOpen] = useState(false);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const { listRef, onScroll, follow } = useFollowScroll(messages);

  const onFailure = useCallback(
    (failure: Failure) => {
      if (failure.kind === 'unauthorized') {
        setNeedApiKey(true);
        setSettingsOpen(true);
      }
      if (failure.kind === 'unreachable') setServer('down');
    },
    [setNeedApiKey, setServer],
  );
  const onEnd = useCallback(() => {
    // Back to typing, unless the reader went somewhere else meanwhile.
    const active = document.activeElement;
    if (!active || active === document.body || (active as HTMLElement).dataset?.testid === 'stop')
      inputRef.current?.focus();
  }, []);
  const { busy, generate, stop, running } = useGeneration({
    settings,
    models,
    uiConfig,
    setMessages,
    onStart: follow,
    onFailure,
    onEnd,
  });
  useSaveConversation(messages, busy, t, notify);
  const dragging = usePageFiles(addFiles);

  const sendText = useCallback(
    (raw: string) => {
      if (busy) return;
      const text = raw.trim();
      if (!text && !attachments.length) {
        notify(t('needText'));
        return;
      }
      const user: UserMessage = { id: newId('u'), role: 'user', text, images: attachments };
      setDraft('');
      clearAttachments();
      clearNotices();
      void generate([...messages, user]);
    },
    [busy, attachments, messages, generate, t, notify, clearAttachments, clearNotices],
  );
  const send = useCallback(() => sendText(draft), [sendText, draft]);

  // The chosen model's one-click tasks: with an image attached the task's prompt is asked at once;
  // without one it waits in the input for the image (these prompts mean nothing alone).
  const tasks = modelTasks(models.find((m) => m.id === settings.model) ?? models[0]);
  const runTask = useCallback(
    (task: ModelTask) => {
      if (attachments.length) {
        sendText(task.prompt);
        return;
      }
      setDraft(task.prompt);
      notify(t('taskNeedsImage'));
      inputRef.current?.focus();
    },
    [attachments.length, sendText, notify, t],
  );

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
    clearAttachments();
    clearNotices();
  }, [busy, messages.length, stop, t, setMessages, clearAttachments, clearNotices]);

  // Keyboard: Esc stops a generation from anywhere on the page (else closes the settings).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      if (running()) {
        e.preventDefault();
        stop();
      } else if (settingsOpen) setSettingsOpen(false);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [stop, running, settingsOpen]);

  return (
    <div class="app" data-busy={busy ? 'true' : 'false'}>
      <TopBar
        t={t}
        lang={lang}
        settings={settings}
        update={update}
        models={models}
        server={server}
        health={health}
        settingsOpen={settingsOpen}
        onToggleSettings={() => setSettingsOpen((o) => !o)}
        batchesOpen={batchesOpen}
        onToggleBatches={() => setBatchesOpen((o) => !o)}
        onClear={clear}
      />

      {settingsOpen && <div class="backdrop" aria-hidden="true" onClick={() => setSettingsOpen(false)} />}
      {settingsOpen && (
        <SettingsPanel
          t={t}
          settings={settings}
          update={update}
          needApiKey={needApiKey}
          onClose={() => setSettingsOpen(false)}
        />
      )}

      {batchesOpen && <div class="backdrop" aria-hidden="true" onClick={() => setBatchesOpen(false)} />}
      {batchesOpen && (
        <BatchesPanel t={t} apiKey={settings.apiKey || undefined} onClose={() => setBatchesOpen(false)} />
      )}

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

      <Composer
        t={t}
        notices={notices}
        onDismissNotice={dismissNotice}
        attachments={attachments}
        onRemoveAttachment={removeAttachment}
        addFiles={addFiles}
        draft={draft}
        setDraft={setDraft}
        inputRef={inputRef}
        busy={busy}
        onSend={send}
        onStop={stop}
        tasks={tasks}
        onTask={runTask}
      />

      {dragging && (
        <div class="drop-overlay" aria-hidden="true">
          <div>{t('dropHere')}</div>
        </div>
      )}
    </div>
  );
}
