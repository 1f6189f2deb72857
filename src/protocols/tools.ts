import { GlimpseError } from '../core/index.js';

/**
 * tool_choice makes sense only with tools, and a function it names must be one of them. Both
 * OpenAI shapes check it here: chat ({function: {name}}) and responses ({name}) pass the name.
 */
export function checkToolChoice(
  choice: string | { name: string } | null | undefined,
  toolNames: readonly string[] | undefined,
): void {
  if (choice == null || choice === 'none') return;
  if (!toolNames?.length)
    throw new GlimpseError(
      'invalid_request',
      "tool_choice needs tools: name the functions the model may call in 'tools'.",
      { param: 'tool_choice' },
    );
  if (typeof choice === 'object' && !toolNames.includes(choice.name)) {
    throw new GlimpseError('invalid_request', `tool_choice names '${choice.name}', which is not in 'tools'.`, {
      param: 'tool_choice',
    });
  }
}
