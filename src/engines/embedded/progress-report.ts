/**
 * Where download progress goes while the model is fetched: a live bar on a terminal, a JSON log
 * line every 5 s otherwise, and always one sentence for /health.
 */
import type { Logger } from '../../observability/index.js';
import { formatBytes, formatProgress, type DownloadProgress } from './download.js';

/** How often a log (not a terminal) hears about a download in progress. */
const LOG_EVERY_MS = 5000;

export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean };

export class DownloadReporter {
  private lastLog = 0;

  constructor(
    private readonly modelName: string,
    private readonly logger: Logger,
    private readonly out: ProgressStream,
    /** Receives the sentence /health shows while the download runs. */
    private readonly setReason: (reason: string) => void,
  ) {}

  report(p: DownloadProgress): void {
    const name = this.modelName;
    const pct = p.total > 0 ? ` ${Math.floor((p.loaded / p.total) * 100)}%` : '';
    this.setReason(
      `Downloading model ${name}:${pct} (${formatBytes(p.loaded)}${p.total ? ' of ' + formatBytes(p.total) : ''}).`,
    );
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${formatProgress(name, p)}${p.done ? '\n' : ''}`);
      return;
    }
    const now = Date.now();
    if (p.done || now - this.lastLog > LOG_EVERY_MS) {
      this.lastLog = now;
      this.logger.info(
        {
          model: name,
          loaded: p.loaded,
          total: p.total,
          bytesPerSecond: Math.round(p.rate),
          etaSeconds: p.etaSeconds === null ? null : Math.round(p.etaSeconds),
        },
        formatProgress(name, p),
      );
    }
  }
}
