/** Turning the on-screen conversation into what is sent back to the model. */
import type { WireMessage } from './client';
import { wirePart } from './media';
import type { Message } from './store';
import { splitThinking } from './think';

/**
 * Thinking never goes back to the model (GLM's own chat template drops it from earlier turns, and
 * it would waste context); failed answers are left out; images are sent with every turn because
 * the server keeps no state between requests.
 */
export function toWireMessages(messages: Message[], systemPrompt: string, maxImages = Infinity): WireMessage[] {
  const out: WireMessage[] = [];
  if (systemPrompt.trim()) out.push({ role: 'system', content: systemPrompt.trim() });
  // The server caps images per request; a long conversation keeps its newest images and says where older ones were.
  // PDFs and videos have limits of their own on the server and are always sent.
  const total = messages.reduce(
    (n, m) => n + (m.role === 'user' ? m.images.filter((i) => i.dataUrl && !i.kind).length : 0),
    0,
  );
  let toSkip = Math.max(0, total - maxImages);
  for (const m of messages) {
    if (m.role === 'user') {
      const parts: Exclude<WireMessage['content'], string> = [];
      for (const img of m.images) {
        if (!img.dataUrl) continue;
        if (toSkip > 0 && !img.kind) {
          toSkip -= 1;
          parts.push({ type: 'text', text: `[earlier image ${img.name} not re-sent]` });
        } else parts.push(wirePart(img));
      }
      if (m.text.trim()) parts.push({ type: 'text', text: m.text });
      if (parts.length) out.push({ role: 'user', content: parts });
    } else if (m.status === 'done' || m.status === 'stopped') {
      const answer = splitThinking(m.content).answer.trim();
      if (answer) out.push({ role: 'assistant', content: answer });
    }
  }
  return out;
}

/** The image an answer's boxes refer to: the first image of the closest user turn before it that had one. */
export function imageForAnswer(
  messages: Message[],
  assistantIndex: number,
): { dataUrl: string; width: number; height: number } | null {
  for (let i = assistantIndex - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && m.role === 'user' && m.images.length) {
      const img = m.images.find((x) => x.dataUrl && !x.kind);
      return img ? { dataUrl: img.dataUrl, width: img.width, height: img.height } : null;
    }
  }
  return null;
}
