/**
 * The pieces every dialect's mapper builds its messages from, so a rule about messages (images
 * only from users, a user turn with content, a prompt's bounds) is written once.
 */
import { GlimpseError, type ChatMessage, type ContentPart, type ImageSource, type Role } from '../core/index.js';
import { imageSourceFromString } from './images.js';

/** One question, with an optional image and system prompt (the GLM-WEB shapes, WebSocket). */
export function singleTurn(prompt: string, image: ImageSource | undefined, system?: string): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (system) messages.push({ role: 'system', content: [{ type: 'text', text: system }] });
  messages.push({
    role: 'user',
    content: [...(image ? [{ type: 'image' as const, source: image }] : []), { type: 'text' as const, text: prompt }],
  });
  return messages;
}

/**
 * A prompt from a body no JSON schema checked (multipart fields, WebSocket messages): a
 * non-empty string within maxPromptChars. `hint` tells the client how to send it.
 */
export function checkPrompt(value: unknown, maxPromptChars: number, hint: string): string {
  const prompt = typeof value === 'string' ? value.trim() : '';
  if (!prompt) throw new GlimpseError('missing_prompt', hint, { param: 'prompt' });
  if (prompt.length > maxPromptChars) throw new GlimpseError('invalid_request', `'prompt' is longer than ${maxPromptChars} characters.`, { param: 'prompt' });
  return prompt;
}

/** OpenAI's `developer` role is the system prompt by another name. */
export function internalRole<R extends string>(role: R): Exclude<R, 'developer'> | 'system' {
  return (role === 'developer' ? 'system' : role) as Exclude<R, 'developer'> | 'system';
}

/**
 * A message part as the OpenAI dialects carry it: text, or an image URL. Images come only from
 * users; `at` names the message (`messages.2`, `input.0`) and `param` the field for the error.
 */
export function contentPart(part: { text: string } | { imageUrl: string }, turn: { role: Role; sentAs: string; at: string }, param: string, imageParam = param): ContentPart {
  if ('text' in part) return { type: 'text', text: part.text };
  if (turn.role !== 'user') throw new GlimpseError('invalid_request', `Images are only accepted in user messages (${turn.at} is '${turn.sentAs}').`, { param });
  return { type: 'image', source: imageSourceFromString(part.imageUrl, imageParam) };
}

/** A conversation the model can answer has a user turn with something in it. */
export function requireUserTurn(messages: readonly ChatMessage[], message: string, param: string): void {
  if (!messages.some((m) => m.role === 'user' && m.content.length)) throw new GlimpseError('empty_messages', message, { param });
}
