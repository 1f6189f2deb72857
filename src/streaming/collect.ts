import { GlimpseError, type FinishReason, type GenerateEvent, type Usage } from '../core/index.js';

export interface CollectedAnswer {
  text: string;
  reasoning: string;
  usage: Usage;
  finishReason: FinishReason;
}

/** Drain an event stream into one answer (non-streaming responses). Throws the stream's error. */
export async function collectAnswer(events: AsyncIterable<GenerateEvent>): Promise<CollectedAnswer> {
  let text = '';
  let reasoning = '';
  let usage: Usage = { promptTokens: 0, completionTokens: 0 };
  let finishReason: FinishReason | undefined;
  for await (const ev of events) {
    switch (ev.type) {
      case 'token':
        text += ev.text;
        break;
      case 'reasoning':
        reasoning += ev.text;
        break;
      case 'usage':
        usage = ev.usage;
        break;
      case 'done':
        finishReason = ev.finishReason;
        break;
      case 'error':
        throw ev.error;
    }
  }
  if (!finishReason) throw new GlimpseError('engine_error', 'The engine ended the answer without finishing it.');
  if (finishReason === 'cancelled') throw new GlimpseError('request_timeout', 'The generation was cancelled before it finished.');
  if (!text && !reasoning) throw new GlimpseError('empty_completion', 'The model returned an empty answer.');
  return { text, reasoning, usage, finishReason };
}
