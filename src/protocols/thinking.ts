import { GlimpseError } from '../core/index.js';

/** OpenAI's reasoning effort levels (chat's reasoning_effort, the Responses API's reasoning.effort): 'none' and 'minimal' mean no thinking. */
export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;

/** The ways a client may say whether the model should think, each as its ecosystem spells it. */
export interface ThinkingAsked {
  /** Zhipu's API and glimpse's own shapes: thinking: {type: 'enabled' | 'disabled'}. */
  thinking?: 'enabled' | 'disabled';
  /** OpenAI's reasoning_effort: 'none' and 'minimal' ask for no thinking, the rest for thinking. */
  reasoningEffort?: string;
  /** vLLM's and SGLang's chat_template_kwargs.enable_thinking. */
  enableThinking?: unknown;
}

/**
 * One answer from up to three spellings: true, false, or undefined (the model's default). Two
 * spellings that disagree are refused rather than one silently winning.
 */
export function resolveThinking(asked: ThinkingAsked): boolean | undefined {
  if (asked.enableThinking !== undefined && typeof asked.enableThinking !== 'boolean') {
    throw new GlimpseError('invalid_request', 'chat_template_kwargs.enable_thinking must be true or false.', {
      param: 'chat_template_kwargs.enable_thinking',
    });
  }
  const said: Array<[string, boolean]> = [];
  if (asked.thinking) said.push(['thinking.type', asked.thinking === 'enabled']);
  if (asked.reasoningEffort)
    said.push(['reasoning_effort', asked.reasoningEffort !== 'none' && asked.reasoningEffort !== 'minimal']);
  if (typeof asked.enableThinking === 'boolean')
    said.push(['chat_template_kwargs.enable_thinking', asked.enableThinking]);
  const [first, ...rest] = said;
  const clash = rest.find(([, v]) => v !== first![1]);
  if (clash) {
    throw new GlimpseError(
      'invalid_request',
      `${first![0]} and ${clash[0]} disagree on whether the model should think; send one of them.`,
      { param: clash[0] },
    );
  }
  return first?.[1];
}
