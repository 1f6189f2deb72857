import { GlimpseError } from '../core/index.js';

// Names the template engine itself fills in or reads as options: a client may not replace them.
const RESERVED_TEMPLATE_ARGS = new Set([
  'messages',
  'tools',
  'documents',
  'add_generation_prompt',
  'continue_final_message',
  'chat_template',
  'tokenize',
  'padding',
  'truncation',
  'max_length',
  'return_tensor',
  'return_tensors',
  'return_dict',
  'tokenizer_kwargs',
  'raise_exception',
  'strftime_now',
]);
const TEMPLATE_ARG_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
export const MAX_TEMPLATE_ARGS_BYTES = 4096;

/**
 * chat_template_kwargs beyond enable_thinking (which resolveThinking reads): plain names, not one
 * the template engine owns (messages, add_generation_prompt, special tokens, ...), JSON values,
 * 4 KiB in all. Returns them without enable_thinking, or undefined when none are left.
 */
export function checkTemplateArgs(
  args: Record<string, unknown> | null | undefined,
): Record<string, unknown> | undefined {
  if (args == null) return undefined;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args)) {
    if (name === 'enable_thinking') continue;
    if (!TEMPLATE_ARG_NAME.test(name) || RESERVED_TEMPLATE_ARGS.has(name) || name.endsWith('_token')) {
      throw new GlimpseError(
        'invalid_request',
        `chat_template_kwargs may not set '${name.slice(0, 64)}': names are letters, digits and _, and not one the template engine fills in itself.`,
        { param: 'chat_template_kwargs' },
      );
    }
    out[name] = value;
  }
  if (Buffer.byteLength(JSON.stringify(out)) > MAX_TEMPLATE_ARGS_BYTES) {
    throw new GlimpseError(
      'invalid_request',
      `chat_template_kwargs is over ${MAX_TEMPLATE_ARGS_BYTES} bytes as JSON.`,
      { param: 'chat_template_kwargs' },
    );
  }
  return Object.keys(out).length ? out : undefined;
}
