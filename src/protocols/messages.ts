/**
 * The pieces every dialect's mapper builds its messages from, so a rule about messages (images
 * only from users, a user turn with content, a prompt's bounds) is written once.
 */
import {
  GlimpseError,
  type ChatMessage,
  type ContentPart,
  type ImageBudget,
  type ImageDetail,
  type ImageSource,
  type Role,
} from '../core/index.js';
import { imageSourceFromString } from './images.js';

/** One question, with an optional image and system prompt (the GLM-WEB shapes, WebSocket). */
export function singleTurn(
  prompt: string,
  media: ImageSource | ContentPart | undefined,
  system?: string,
): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (system) messages.push({ role: 'system', content: [{ type: 'text', text: system }] });
  // An upload may be a document or video part already; anything else given is an image's source.
  const first: ContentPart | undefined = !media
    ? undefined
    : 'type' in media
      ? media
      : { type: 'image', source: media };
  messages.push({
    role: 'user',
    content: [...(first ? [first] : []), { type: 'text' as const, text: prompt }],
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
  if (prompt.length > maxPromptChars)
    throw new GlimpseError('invalid_request', `'prompt' is longer than ${maxPromptChars} characters.`, {
      param: 'prompt',
    });
  return prompt;
}

/** OpenAI's `developer` role is the system prompt by another name. */
export function internalRole<R extends string>(role: R): Exclude<R, 'developer'> | 'system' {
  return (role === 'developer' ? 'system' : role) as Exclude<R, 'developer'> | 'system';
}

/** A message part as the dialects carry it, before it is checked: text, an image, a document or a video. */
export type WirePart =
  | { text: string }
  | { imageUrl: string; detail?: ImageDetail; budget?: ImageBudget }
  | { fileData: string; filename?: string }
  | { fileUrl: string; filename?: string }
  | { videoUrl: string };

/**
 * A message part as the dialects carry it. Images, documents and videos come only from users;
 * `at` names the message (`messages.2`, `input.0`), `param` the field for the error, and
 * `mediaParam` the field holding the media.
 */
export function contentPart(
  part: WirePart,
  turn: { role: Role; sentAs: string; at: string },
  param: string,
  mediaParam = param,
): ContentPart {
  if ('text' in part) return { type: 'text', text: part.text };
  const kind = 'imageUrl' in part ? 'Images' : 'videoUrl' in part ? 'Videos' : 'Files';
  if (turn.role !== 'user')
    throw new GlimpseError(
      'invalid_request',
      `${kind} are only accepted in user messages (${turn.at} is '${turn.sentAs}').`,
      { param },
    );
  if ('imageUrl' in part)
    return {
      type: 'image',
      source: imageSourceFromString(part.imageUrl, mediaParam),
      ...(part.detail ? { detail: part.detail } : {}),
      ...(part.budget ? { budget: part.budget } : {}),
    };
  if ('videoUrl' in part) return { type: 'video', source: imageSourceFromString(part.videoUrl, mediaParam) };
  const text = 'fileData' in part ? part.fileData : part.fileUrl;
  return {
    type: 'document',
    source: imageSourceFromString(text, mediaParam),
    ...(part.filename ? { filename: part.filename } : {}),
  };
}

/** A conversation the model can answer has a user turn with something in it. */
export function requireUserTurn(messages: readonly ChatMessage[], message: string, param: string): void {
  if (!messages.some((m) => m.role === 'user' && m.content.length))
    throw new GlimpseError('empty_messages', message, { param });
}
