/**
 * The conversation and settings live in localStorage so a reload keeps them. Images make the
 * conversation heavy: when the browser's quota is hit, the oldest images are dropped from what
 * is stored (the text stays), and the page says so rather than failing silently.
 */
import type { Attachment } from './images';
import type { Box } from './boxes';
import type { Failure } from './client';
import type { Lang } from './i18n';

export interface UserMessage {
  id: string;
  role: 'user';
  text: string;
  images: Attachment[];
}

/**
 * connecting: sent, no answer yet; waiting: admitted, the model is reading the message (a photo
 * on a CPU takes seconds before the first token); queued: waiting for a slot.
 */
export type AssistantStatus =
  'connecting' | 'waiting' | 'queued' | 'thinking' | 'streaming' | 'done' | 'stopped' | 'failed';

export interface Stats {
  ttftMs?: number;
  totalMs: number;
  completionTokens?: number;
  tokensPerSecond?: number;
}

export interface AssistantMessage {
  id: string;
  role: 'assistant';
  model: string;
  /** Raw content as streamed (may hold <think> blocks and box markers). */
  content: string;
  /** reasoning_content, when the server sends thinking apart. */
  reasoning: string;
  /** The server's grounding boxes (`glimpse_boxes`), when it sent them; preferred over reading the text. */
  boxes?: Box[];
  status: AssistantStatus;
  queuePosition?: number;
  failure?: Failure;
  stats?: Stats;
  note?: string;
}

export type Message = UserMessage | AssistantMessage;

export interface Settings {
  model: string;
  systemPrompt: string;
  temperature: number;
  maxTokens: number;
  topP: number;
  stallSeconds: number;
  apiKey: string;
  lang: Lang | null;
  theme: 'system' | 'light' | 'dark';
}

export const DEFAULT_SETTINGS: Settings = {
  model: '',
  systemPrompt: '',
  temperature: 0.7,
  maxTokens: 1024,
  topP: 0.9,
  stallSeconds: 45,
  apiKey: '',
  lang: null,
  theme: 'system',
};

const CONV_KEY = 'glimpse.conversation.v1';
const SETTINGS_KEY = 'glimpse.settings.v1';

function safeGet(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function loadSettings(): Settings {
  const raw = safeGet(SETTINGS_KEY);
  if (!raw) return { ...DEFAULT_SETTINGS };
  try {
    const parsed = JSON.parse(raw) as Partial<Settings>;
    const out = { ...DEFAULT_SETTINGS };
    for (const k of Object.keys(out) as Array<keyof Settings>) {
      const sameType = parsed[k] !== undefined && typeof parsed[k] === typeof DEFAULT_SETTINGS[k];
      if (sameType || (k === 'lang' && (parsed.lang === 'en' || parsed.lang === 'zh'))) {
        (out as Record<string, unknown>)[k] = parsed[k];
      }
    }
    return out;
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

export function saveSettings(s: Settings): void {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(s));
  } catch {
    /* storage full or disabled: settings simply do not persist */
  }
}

export function loadConversation(): Message[] {
  const raw = safeGet(CONV_KEY);
  if (!raw) return [];
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (!Array.isArray(parsed)) return [];
    return parsed
      .filter(
        (m): m is Message =>
          !!m && typeof m === 'object' && ((m as Message).role === 'user' || (m as Message).role === 'assistant'),
      )
      .map((m) => {
        // An answer that was streaming when the page went away will not resume.
        if (m.role === 'assistant' && !['done', 'stopped', 'failed'].includes(m.status))
          return { ...m, status: 'stopped' as const, note: 'reload' };
        return m;
      });
  } catch {
    return [];
  }
}

/** Returns how many images had to be left out of storage to fit the quota. */
export function saveConversation(messages: Message[]): number {
  let dropped = 0;
  let current = messages;
  for (;;) {
    try {
      localStorage.setItem(CONV_KEY, JSON.stringify(current));
      return dropped;
    } catch {
      const idx = current.findIndex((m) => m.role === 'user' && m.images.some((i) => i.dataUrl));
      if (idx === -1) return dropped;
      current = current.map((m, i) => {
        if (i !== idx || m.role !== 'user') return m;
        dropped += m.images.length;
        // Page and frame views go too: they are the heaviest part of a PDF's entry after the PDF itself.
        const emptied = (img: (typeof m.images)[number]) => ({
          ...img,
          dataUrl: '',
          ...(img.rendered ? { rendered: { ...img.rendered, thumbnails: [] } } : {}),
        });
        return { ...m, images: m.images.map(emptied) };
      });
    }
  }
}
