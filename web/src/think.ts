/**
 * GLM models think before they answer. Servers deliver the thinking either apart
 * (delta.reasoning_content) or inline as "<think>...</think>" in the content; some chat templates
 * open the think block in the prompt, so the content carries only the closing tag.
 * splitThinking() separates the two so the page can fold the thinking away and keep it out of
 * the history sent back to the model.
 */
export interface SplitContent {
  thinking: string;
  answer: string;
  /** True while a think block has opened and not yet closed (the model is still thinking). */
  thinkingOpen: boolean;
}

const OPEN = '<think>';
const CLOSE = '</think>';

/** While streaming, a tag may arrive in pieces ("<thi"): hide such a tail until it resolves. */
function trimPartialTag(s: string): string {
  for (const tag of [OPEN, CLOSE]) {
    for (let n = Math.min(tag.length - 1, s.length); n > 0; n--) {
      if (s.endsWith(tag.slice(0, n))) return s.slice(0, s.length - n);
    }
  }
  return s;
}

export function splitThinking(content: string, streaming = false): SplitContent {
  const thinking: string[] = [];
  let answer = '';
  let rest = content;
  let thinkingOpen = false;

  const firstClose = rest.indexOf(CLOSE);
  const firstOpen = rest.indexOf(OPEN);
  if (firstClose !== -1 && (firstOpen === -1 || firstClose < firstOpen)) {
    // The template opened the block for us: everything before the first close tag is thinking.
    thinking.push(rest.slice(0, firstClose));
    rest = rest.slice(firstClose + CLOSE.length);
  }
  for (;;) {
    const open = rest.indexOf(OPEN);
    if (open === -1) {
      answer += rest;
      break;
    }
    answer += rest.slice(0, open);
    const afterOpen = rest.slice(open + OPEN.length);
    const close = afterOpen.indexOf(CLOSE);
    if (close === -1) {
      thinking.push(streaming ? trimPartialTag(afterOpen) : afterOpen);
      thinkingOpen = true;
      break;
    }
    thinking.push(afterOpen.slice(0, close));
    rest = afterOpen.slice(close + CLOSE.length);
  }
  if (streaming && !thinkingOpen) answer = trimPartialTag(answer);
  return {
    thinking: thinking
      .map((t) => t.trim())
      .filter(Boolean)
      .join('\n\n'),
    answer: answer.replace(/^\s+/, ''),
    thinkingOpen,
  };
}
