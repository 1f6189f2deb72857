import {
  GlimpseError,
  type FinishReason,
  type GenerateEvent,
  type TokenLogprob,
  type ToolCall,
  type Usage,
} from '../core/index.js';

export interface CollectedAnswer {
  text: string;
  reasoning: string;
  usage: Usage;
  finishReason: FinishReason;
  /** The tool calls, whole, in order (absent when the model called none). */
  toolCalls?: ToolCall[];
  /** Per token, when the request asked for logprobs. */
  logprobs?: TokenLogprob[];
}

/** Drain an event stream into one answer (non-streaming responses). Throws the stream's error. */
export async function collectAnswer(events: AsyncIterable<GenerateEvent>): Promise<CollectedAnswer> {
  let text = '';
  let reasoning = '';
  let usage: Usage = { promptTokens: 0, completionTokens: 0 };
  let finishReason: FinishReason | undefined;
  const calls: ToolCall[] = [];
  let logprobs: TokenLogprob[] | undefined;
  for await (const ev of events) {
    switch (ev.type) {
      case 'tool_call': {
        const call = (calls[ev.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (ev.id) call.id = ev.id;
        if (ev.name) call.function.name += ev.name;
        if (ev.arguments) call.function.arguments += ev.arguments;
        break;
      }
      case 'token':
        text += ev.text;
        if (ev.logprobs) (logprobs ??= []).push(...ev.logprobs);
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
  // Deadlines and shutdown arrive as error events; a bare 'cancelled' means the client went away,
  // which is not a server failure (499, logged at info, not as a 5xx).
  if (finishReason === 'cancelled')
    throw new GlimpseError('client_closed', 'The client closed the connection before the answer finished.');
  const toolCalls = calls.filter(Boolean);
  if (!text && !reasoning && !toolCalls.length)
    throw new GlimpseError('empty_completion', 'The model returned an empty answer.');
  return {
    text,
    reasoning,
    usage,
    finishReason,
    ...(toolCalls.length ? { toolCalls } : {}),
    ...(logprobs ? { logprobs } : {}),
  };
}
