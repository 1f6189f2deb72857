/**
 * Incremental Server-Sent Events parser: bytes in, complete `data` payloads out.
 * Handles CRLF, LF and CR line ends, multi-line data fields, comments and events split across chunks.
 *
 * Synchronous (`SseDataParser.push` returns the payloads a chunk completed), so a reader that has
 * its own loop over the body pays no async generator per event: the upstream engine's hot path.
 */
export class SseDataParser {
  private readonly decoder = new TextDecoder();
  /** Text after the last complete line. */
  private rest = '';
  /** The `data` lines of the event being read. */
  private data: string[] = [];
  /** The last chunk ended with '\r': a '\n' at the start of the next one belongs to that line end. */
  private afterCr = false;

  /** The payloads of the events this chunk completed, in order. */
  push(chunk: Uint8Array): string[] {
    let text = this.decoder.decode(chunk, { stream: true });
    if (this.afterCr && text.startsWith('\n')) text = text.slice(1);
    this.afterCr = false;
    if (this.rest) text = this.rest + text;
    const out: string[] = [];
    let from = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(text.slice(from, i), out);
      if (c === 13) {
        if (i + 1 === text.length) this.afterCr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      from = i + 1;
    }
    this.rest = from < text.length ? text.slice(from) : '';
    return out;
  }

  /** What is left when the body ends: a last event without its blank line. */
  end(): string[] {
    const text = this.rest + this.decoder.decode();
    this.rest = '';
    const out: string[] = [];
    if (text) this.line(text, out);
    if (this.data.length) out.push(this.data.join('\n'));
    this.data = [];
    return out;
  }

  private line(line: string, out: string[]): void {
    if (line === '') {
      if (this.data.length) out.push(this.data.length === 1 ? this.data[0]! : this.data.join('\n'));
      this.data = [];
    } else if (line.startsWith('data:')) {
      this.data.push(line.slice(line.charCodeAt(5) === 32 ? 6 : 5));
    }
    // comments (':'), 'event:', 'id:' and 'retry:' lines carry nothing we need
  }
}

/** The same as an async generator, for readers that want one. */
export async function* parseSseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const parser = new SseDataParser();
  for await (const chunk of body) yield* parser.push(chunk);
  yield* parser.end();
}
