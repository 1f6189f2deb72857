import type { ServerResponse } from 'node:http';

/**
 * Writes Server-Sent Events to a raw response. Headers go out at once (first-byte guarantee),
 * writes wait for 'drain' so a slow reader never makes us buffer without bound, and writes
 * after the client has gone are dropped instead of throwing.
 */
export class SseWriter {
  private closed = false;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly res: ServerResponse) {
    res.once('close', () => {
      this.closed = true;
      this.stopHeartbeat();
    });
  }

  /**
   * A comment every intervalMs, so proxies and load balancers that cut idle connections (nginx's
   * proxy_read_timeout, cloud LBs at 60 s) keep a slow or queued stream open. Skipped while the
   * client is not reading (the socket is backed up): that connection is not idle. `frame` is the
   * raw text sent each time: a comment, or an event for formats that define one (Anthropic's ping).
   */
  startHeartbeat(intervalMs: number, frame = ': ping\n\n'): void {
    this.stopHeartbeat();
    if (!(intervalMs > 0)) return;
    this.heartbeat = setInterval(() => {
      if (this.isClosed) return this.stopHeartbeat();
      if (this.res.writableNeedDrain) return;
      this.res.write(frame);
    }, intervalMs);
    this.heartbeat.unref?.();
  }

  stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  get isClosed(): boolean {
    return this.closed || this.res.destroyed || this.res.writableEnded;
  }

  /** Send status and headers now. */
  open(status = 200, headers: Record<string, string> = {}): void {
    this.res.writeHead(status, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      ...headers,
    });
    this.res.flushHeaders();
  }

  /** One `data:` event; multi-line payloads become several data lines, as the SSE spec wants. */
  async data(payload: string, event?: string): Promise<void> {
    let frame = event ? `event: ${event}\n` : '';
    for (const line of payload.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
    await this.write(frame + '\n');
  }

  /** One event of JSON (which never holds a raw line end: JSON.stringify escapes them), in one data line. */
  async json(value: unknown, event?: string): Promise<void> {
    await this.jsonText(JSON.stringify(value), event);
  }

  /** One event of JSON text already made (by JSON.stringify or from its pieces): no line end in it. */
  async jsonText(text: string, event?: string): Promise<void> {
    await this.write(event ? `event: ${event}\ndata: ${text}\n\n` : `data: ${text}\n\n`);
  }

  /** A comment line: ignored by clients, keeps proxies from closing an idle connection. */
  async comment(text: string): Promise<void> {
    await this.write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
  }

  end(): void {
    this.stopHeartbeat();
    this.uncork();
    if (!this.res.writableEnded) this.res.end();
  }

  /**
   * Events made in the same tick (an upstream packet often carries many tokens) leave in one
   * write, one syscall, instead of one each: the response is corked until the next tick.
   */
  private corked = false;
  private readonly uncork = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.res.uncork();
  };

  private write(chunk: string): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      process.nextTick(this.uncork);
    }
    if (this.res.write(chunk)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.once('drain', done);
      this.res.once('close', done);
    });
  }
}
