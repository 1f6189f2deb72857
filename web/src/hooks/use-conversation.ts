/** The conversation, kept in storage so a reload (even mid-answer) shows what had arrived. */
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Translate } from '../i18n';
import { loadConversation, saveConversation, type Message } from '../store';

export function useConversation() {
  return useState<Message[]>(loadConversation);
}

/**
 * Saves `messages` on every change, streaming included. While an answer streams the conversation
 * changes every frame: saved at most once a second then, at once otherwise. A layout effect, so
 * what is on screen is saved before a reload can happen. Says once when storage is full.
 */
export function useSaveConversation(
  messages: Message[],
  busy: boolean,
  t: Translate,
  notify: (text: string) => void,
): void {
  const storageWarned = useRef(false);
  useLayoutEffect(() => {
    const save = () => {
      const dropped = saveConversation(messages);
      if (dropped && !storageWarned.current) {
        storageWarned.current = true;
        notify(t('storageFull', { n: dropped }));
      }
    };
    if (!busy) {
      save();
      return;
    }
    const timer = setTimeout(save, 1000);
    return () => clearTimeout(timer);
  }, [messages, busy, t, notify]);
}
