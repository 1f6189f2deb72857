/**
 * Asking for one answer: streams it into a new assistant message (painted once per frame),
 * follows its queue position and status, measures it, and lets the reader stop it.
 */
import { useCallback, useRef, useState } from 'preact/hooks';
import type { Dispatch, StateUpdater } from 'preact/hooks';
import { streamChat, type Failure, type ModelEntry, type UiConfig } from '../client';
import { serverBoxes } from '../boxes';
import { serverMedia, withRendered } from '../media';
import { toWireMessages } from '../conversation';
import { newId } from '../ids';
import { DEFAULT_SETTINGS, type AssistantMessage, type Message, type Settings } from '../store';

export interface GenerationOptions {
  settings: Settings;
  models: ModelEntry[];
  uiConfig: UiConfig;
  setMessages: Dispatch<StateUpdater<Message[]>>;
  /** An answer starts. */
  onStart: () => void;
  /** An answer failed (after its message says so). */
  onFailure: (failure: Failure) => void;
  /** An answer ended, however it ended. */
  onEnd: () => void;
}

export function useGeneration({
  settings,
  models,
  uiConfig,
  setMessages,
  onStart,
  onFailure,
  onEnd,
}: GenerationOptions) {
  const [busy, setBusy] = useState(false);
  const abortRef = useRef<AbortController | null>(null);

  const patchAssistant = useCallback(
    (id: string, patch: Partial<AssistantMessage> | ((m: AssistantMessage) => Partial<AssistantMessage>)) => {
      setMessages((ms) =>
        ms.map((m) =>
          m.id === id && m.role === 'assistant' ? { ...m, ...(typeof patch === 'function' ? patch(m) : patch) } : m,
        ),
      );
    },
    [setMessages],
  );

  /** Streams one answer for the conversation `history` into a new assistant message. */
  const generate = useCallback(
    async (history: Message[]) => {
      const controller = new AbortController();
      abortRef.current = controller;
      setBusy(true);
      onStart();
      const id = newId('a');
      const model = settings.model || models[0]?.id || 'default';
      const placeholder: AssistantMessage = {
        id,
        role: 'assistant',
        model,
        content: '',
        reasoning: '',
        status: 'connecting',
      };
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
          // Small views of PDF pages and video frames for the strip under each; only when there is one.
          ...(history.some((m) => m.role === 'user' && m.images.some((a) => a.kind))
            ? { glimpse_thumbnails: true }
            : {}),
        },
        apiKey: settings.apiKey || undefined,
        signal: controller.signal,
        // Left at its default, the stall limit follows the server's heartbeat interval (three missed heartbeats).
        stallMs:
          (settings.stallSeconds === DEFAULT_SETTINGS.stallSeconds
            ? Math.max(settings.stallSeconds, 3 * uiConfig.heartbeatSeconds)
            : Math.max(1, settings.stallSeconds)) * 1000,
        callbacks: {
          onAccepted: () => patchAssistant(id, (m) => (m.status === 'connecting' ? { status: 'waiting' } : {})),
          onQueued: (n) =>
            patchAssistant(id, (m) =>
              m.status === 'connecting' || m.status === 'waiting' || m.status === 'queued'
                ? { status: 'queued', queuePosition: n }
                : {},
            ),
          onAdmitted: () =>
            patchAssistant(id, (m) => (m.status === 'queued' ? { status: 'waiting', queuePosition: undefined } : {})),
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
          onMedia: (field) => {
            const entries = serverMedia(field);
            if (entries) setMessages((ms) => withRendered(ms, entries));
          },
          onBoxes: (field) => {
            const boxes = serverBoxes(field);
            if (boxes) patchAssistant(id, { boxes });
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
      if (outcome.kind === 'done')
        patchAssistant(id, {
          status: 'done',
          stats,
          queuePosition: undefined,
          ...(outcome.finishReason === 'length' ? { note: 'length' } : {}),
        });
      else if (outcome.kind === 'stopped') patchAssistant(id, { status: 'stopped', stats, queuePosition: undefined });
      else {
        patchAssistant(id, { status: 'failed', failure: outcome.failure, stats, queuePosition: undefined });
        onFailure(outcome.failure);
      }
      if (abortRef.current === controller) abortRef.current = null;
      setBusy(false);
      onEnd();
    },
    [
      settings,
      models,
      patchAssistant,
      setMessages,
      uiConfig.heartbeatSeconds,
      uiConfig.maxImagesPerMessage,
      onStart,
      onFailure,
      onEnd,
    ],
  );

  const stop = useCallback(() => abortRef.current?.abort(), []);
  /** Whether an answer is being asked for right now (read at the moment, not at the last render). */
  const running = useCallback(() => abortRef.current !== null, []);

  return { busy, generate, stop, running };
}
