/**
 * `GET /v1/responses/{id}?stream=true`: a stored response told again as the event stream that
 * built it (response.created, each output item added, its parts and deltas, done, then the
 * final response.<status>), with the stored ids, so a client that lost a stream can read it from
 * the store. `starting_after` skips the events up to that sequence number, as OpenAI's does.
 */
import type { SseWriter } from '../../streaming/index.js';
import type { StoredResponse } from '../../responses/index.js';

type Item = Record<string, unknown> & { type?: string; id?: string };
type Part = { type: string; text?: string } & Record<string, unknown>;

export async function replayResponse(
  sse: SseWriter,
  response: StoredResponse['response'],
  startingAfter = -1,
): Promise<void> {
  let seq = 0;
  const send = async (type: string, fields: Record<string, unknown>) => {
    const n = seq++;
    if (n > startingAfter) await sse.json({ type, sequence_number: n, ...fields }, type);
  };
  const begun = { ...response, status: 'in_progress', output: [], usage: null };
  await send('response.created', { response: begun });
  await send('response.in_progress', { response: begun });
  for (const [index, raw] of (response.output as Item[]).entries()) {
    const item = raw;
    const at = { item_id: item.id, output_index: index };
    if (item.type === 'function_call') {
      await send('response.output_item.added', {
        output_index: index,
        item: { ...item, status: 'in_progress', arguments: '' },
      });
      await send('response.function_call_arguments.delta', { ...at, delta: item.arguments });
      await send('response.function_call_arguments.done', { ...at, name: item.name, arguments: item.arguments });
    } else if (item.type === 'reasoning') {
      await send('response.output_item.added', {
        output_index: index,
        item: { ...item, status: 'in_progress', summary: [], content: [] },
      });
      for (const [j, part] of ((item.summary as Part[] | undefined) ?? []).entries()) {
        const where = { ...at, summary_index: j };
        await send('response.reasoning_summary_part.added', { ...where, part: { ...part, text: '' } });
        await send('response.reasoning_summary_text.delta', { ...where, delta: part.text ?? '' });
        await send('response.reasoning_summary_text.done', { ...where, text: part.text ?? '' });
        await send('response.reasoning_summary_part.done', { ...where, part });
      }
      await parts(send, at, (item.content as Part[] | undefined) ?? [], 'response.reasoning_text');
    } else {
      await send('response.output_item.added', {
        output_index: index,
        item: { ...item, status: 'in_progress', content: [] },
      });
      await parts(send, at, (item.content as Part[] | undefined) ?? [], 'response.output_text');
    }
    await send('response.output_item.done', { output_index: index, item });
  }
  await send(`response.${String(response.status ?? 'completed')}`, { response });
}

/** A content part's added, delta, done and part-done events (output_text of a message, reasoning_text of reasoning). */
async function parts(
  send: (type: string, fields: Record<string, unknown>) => Promise<void>,
  at: Record<string, unknown>,
  content: Part[],
  text: string,
): Promise<void> {
  for (const [j, part] of content.entries()) {
    const where = { ...at, content_index: j };
    const extra = part.type === 'output_text' ? { logprobs: [] } : {};
    await send('response.content_part.added', { ...where, part: { ...part, text: '' } });
    await send(`${text}.delta`, { ...where, delta: part.text ?? '', ...extra });
    await send(`${text}.done`, { ...where, text: part.text ?? '', ...extra });
    await send('response.content_part.done', { ...where, part });
  }
}
