/**
 * Incremental Server-Sent Events decoder. Fed raw text as it arrives (chunks may split lines or
 * even "\r\n" pairs anywhere); yields data events when a blank line ends them and comment lines
 * (": ...", glimpse's heartbeats and queue notices) as soon as they are complete.
 */
export type SseEvent = { kind: 'data'; data: string; event?: string } | { kind: 'comment'; text: string };

export class SseDecoder {
  private buffer = '';
  private dataLines: string[] = [];
  private eventName: string | undefined;
  private pendingCR = false;

  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    let text = chunk;
    // A "\r" at the end of the previous chunk may be the first half of "\r\n".
    if (this.pendingCR && text.startsWith('\n')) text = text.slice(1);
    this.pendingCR = text.endsWith('\r');
    this.buffer += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line, out);
    }
    return out;
  }

  /** Call when the body ends: a final event without its blank line is still delivered. */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.buffer) this.line(this.buffer, out);
    this.buffer = '';
    this.line('', out);
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.dataLines.length)
        out.push({
          kind: 'data',
          data: this.dataLines.join('\n'),
          ...(this.eventName ? { event: this.eventName } : {}),
        });
      this.dataLines = [];
      this.eventName = undefined;
      return;
    }
    if (line.startsWith(':')) {
      out.push({ kind: 'comment', text: line.slice(1).trim() });
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.dataLines.push(value);
    else if (field === 'event') this.eventName = value;
    // id: and retry: do not matter for a one-shot POST stream.
  }
}

/** Reads "queued position=N" (glimpse's queue notice comment); null when the comment is something else. */
export function queuePositionFromComment(text: string): number | null {
  const m = /^queued\b.*?\bposition\s*[=:]\s*(\d+)/i.exec(text);
  return m ? Number(m[1]) : null;
}
