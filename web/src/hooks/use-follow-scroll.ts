/** Follow the answer while the reader is at the bottom; leave them alone when they scrolled up. */
import { useCallback, useEffect, useRef } from 'preact/hooks';
import type { Message } from '../store';

/** Closer to the bottom than this (px) counts as at the bottom. */
const NEAR_BOTTOM = 80;

export function useFollowScroll(messages: Message[]) {
  const listRef = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  useEffect(() => {
    const el = listRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages]);
  const onScroll = useCallback(() => {
    const el = listRef.current;
    if (el) stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM;
  }, []);
  /** Follow again (a new answer starts). */
  const follow = useCallback(() => {
    stickToBottom.current = true;
  }, []);
  return { listRef, onScroll, follow };
}
