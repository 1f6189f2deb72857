/**
 * Resumable model download from a Hugging Face-compatible hub into glimpse's cache.
 *
 * Layout: <cacheDir>/<org>/<name>/<revision>/<files as in the repo>. A file is written as
 * <file>.partial and renamed when complete, so an interrupted download resumes with an HTTP
 * Range request from where it stopped, and a complete file is never half-overwritten.
 * A manifest (.glimpse-complete.<dtype>.json) marks a finished download: once it is there the
 * model loads with no network at all (what --offline relies on).
 */
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { once } from 'node:events';

export interface DownloadProgress {
  /** File being fetched now. */
  file: string;
  /** Bytes on disk for all files, resumed bytes included. */
  loaded: number;
  /** Sum of all file sizes, when the hub told them (0 when unknown). */
  total: number;
  /** Bytes per second over the last seconds of this run (resumed bytes excluded). */
  rate: number;
  /** Seconds left at the current rate, when known. */
  etaSeconds: number | null;
  done: boolean;
}

export interface HubOptions {
  hubUrl: string;
  revision: string;
  /** Extra attempts for a transfer that broke off or stalled, each resuming where the last stopped. */
  retries?: number;
  /** Wait before the first retry; doubles each time. */
  retryDelayMs?: number;
  /** Seconds without a byte before a transfer counts as stalled. */
  stallTimeout?: number;
  /** Seconds to wait for the hub to answer a metadata request. */
  connectTimeout?: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** Raised when the hub cannot be used; `reachable` false means no connection at all. */
export class HubError extends Error {
  constructor(
    message: string,
    readonly reachable: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

export function fileUrl(modelId: string, file: string, opts: HubOptions): string {
  const base = opts.hubUrl.replace(/\/+$/, '');
  return `${base}/${modelId}/resolve/${encodeURIComponent(opts.revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  if (cause?.code) return cause.code;
  if ((err as Error)?.name === 'TimeoutError') return 'no answer in time';
  return cause?.message ?? (err as Error)?.message ?? String(err);
}

async function hubFetch(url: string, init: RequestInit, opts: HubOptions, timeoutSeconds: number): Promise<Response> {
  const signals = [AbortSignal.timeout(timeoutSeconds * 1000)];
  if (opts.signal) signals.push(opts.signal);
  try {
    return await fetch(url, {
      ...init,
      redirect: 'follow',
      signal: AbortSignal.any(signals),
      headers: { ...opts.headers, ...(init.headers as Record<string, string>) },
    });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new HubError(describeFetchError(err), false);
  }
}

/** Size of a file on the hub, or null when it does not exist there (404). */
export async function remoteSize(modelId: string, file: string, opts: HubOptions): Promise<number | null> {
  const res = await hubFetch(fileUrl(modelId, file, opts), { method: 'HEAD' }, opts, opts.connectTimeout ?? 15);
  if (res.status === 404) return null;
  if (!res.ok) throw new HubError(`HTTP ${res.status} for ${file}`, true, res.status);
  // Hugging Face sends the LFS object's size here on redirects; plain servers send Content-Length.
  const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length') ?? 0);
  return Number.isFinite(size) ? size : 0;
}

/** Fetch a small file's text (config.json and friends), or null on 404. */
export async function fetchText(modelId: string, file: string, opts: HubOptions): Promise<string | null> {
  const res = await hubFetch(fileUrl(modelId, file, opts), {}, opts, opts.connectTimeout ?? 15);
  if (res.status === 404) return null;
  if (!res.ok) throw new HubError(`HTTP ${res.status} for ${file}`, true, res.status);
  return await res.text();
}

/**
 * Download `file` to `dest`, resuming a `.partial` left by an earlier run. Calls onBytes with
 * each chunk's size. Verifies the final size against what the server announced.
 */
export async function downloadFile(
  modelId: string,
  file: string,
  dest: string,
  opts: HubOptions,
  onBytes: (n: number, resumedFrom: number) => void,
): Promise<void> {
  mkdirSync(dirname(dest), { recursive: true });
  const partial = dest + '.partial';
  let start = existsSync(partial) ? statSync(partial).size : 0;
  const controller = new AbortController();
  const stallMs = (opts.stallTimeout ?? 60) * 1000;
  let stallTimer: NodeJS.Timeout | undefined;
  const armStall = (): void => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(
      () => controller.abort(new HubError(`the transfer of ${file} stalled for ${stallMs / 1000} s`, true)),
      stallMs,
    );
  };
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  armStall();
  let res: Response;
  try {
    res = await fetch(fileUrl(modelId, file, opts), {
      redirect: 'follow',
      signal,
      headers: { ...opts.headers, ...(start > 0 ? { Range: `bytes=${start}-` } : {}) },
    });
  } catch (err) {
    clearTimeout(stallTimer);
    if (opts.signal?.aborted) throw err;
    if (controller.signal.aborted) throw controller.signal.reason;
    throw new HubError(describeFetchError(err), false);
  }
  if (res.status === 416 && start > 0) {
    // The partial file already holds every byte (the rename was what got interrupted).
    clearTimeout(stallTimer);
    await res.body?.cancel();
    onBytes(0, start);
    renameSync(partial, dest);
    return;
  }
  if (!res.ok) {
    clearTimeout(stallTimer);
    await res.body?.cancel();
    throw new HubError(`HTTP ${res.status} for ${file}`, true, res.status);
  }
  if (res.status !== 206) start = 0; // server ignored Range: start over
  const expected =
    res.status === 206
      ? parseContentRangeTotal(res.headers.get('content-range'))
      : Number(res.headers.get('content-length') ?? NaN);
  onBytes(0, start);
  const out = createWriteStream(partial, { flags: start > 0 ? 'a' : 'w' });
  let written = start;
  try {
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      armStall();
      written += value.byteLength;
      if (!out.write(value)) await once(out, 'drain');
      onBytes(value.byteLength, start);
    }
  } catch (err) {
    if (controller.signal.aborted && !opts.signal?.aborted) throw controller.signal.reason;
    if (opts.signal?.aborted) throw err;
    throw new HubError(`the transfer of ${file} broke off (${describeFetchError(err)})`, true);
  } finally {
    clearTimeout(stallTimer);
    out.end();
    await once(out, 'close');
  }
  if (Number.isFinite(expected) && expected > 0 && written !== expected) {
    throw new HubError(`${file} arrived with ${written} of ${expected} bytes`, true);
  }
  renameSync(partial, dest);
}

/** downloadFile, retried with backoff when the connection breaks mid-transfer or the hub answers 5xx. */
export async function downloadFileWithRetry(
  modelId: string,
  file: string,
  dest: string,
  opts: HubOptions,
  onBytes: (n: number, resumedFrom: number) => void,
): Promise<void> {
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      await downloadFile(modelId, file, dest, opts, onBytes);
      return;
    } catch (err) {
      const transient = err instanceof HubError && err.reachable && (err.status === undefined || err.status >= 500);
      if (!transient || attempt >= retries || opts.signal?.aborted) throw err;
      await new Promise((r) => setTimeout(r, (opts.retryDelayMs ?? 1000) * 2 ** attempt));
    }
  }
}

function parseContentRangeTotal(header: string | null): number {
  const m = header ? /\/(\d+)$/.exec(header) : null;
  return m ? Number(m[1]) : NaN;
}

export interface Manifest {
  modelId: string;
  revision: string;
  dtype: string;
  files: string[];
  bytes: number;
  completedAt: string;
}

export const manifestName = (dtype: string): string => `.glimpse-complete.${dtype}.json`;

export function readManifest(dir: string, dtype: string): Manifest | null {
  try {
    const m = JSON.parse(readFileSync(join(dir, manifestName(dtype)), 'utf8')) as Manifest;
    // A manifest whose files went missing (someone cleaned the cache) does not count.
    return m.files.every((f) => existsSync(join(dir, f))) ? m : null;
  } catch {
    return null;
  }
}

export function writeManifest(dir: string, m: Manifest): void {
  writeFileSync(join(dir, manifestName(m.dtype)), JSON.stringify(m, null, 2));
}

/** Tracks overall progress across files: bytes, a rate over a sliding window, and an ETA. */
export class ProgressTracker {
  /** Bytes on disk per file: a retried file restarts from what it has, so nothing is counted twice. */
  private perFile = new Map<string, number>();
  private loaded = 0;
  private sessionBytes = 0;
  private samples: { t: number; bytes: number }[] = [];
  private readonly started: number;

  constructor(
    readonly total: number,
    private readonly emit: (p: DownloadProgress) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  /** `n` new bytes of `file`; on its first chunk of an attempt, `resumedFrom` bytes were already on disk. */
  add(file: string, n: number, resumedFrom: number, isFirstChunk: boolean): void {
    const before = this.perFile.get(file) ?? 0;
    const after = (isFirstChunk ? resumedFrom : before) + n;
    this.perFile.set(file, after);
    this.loaded += after - before;
    this.sessionBytes += n;
    const t = this.now();
    this.samples.push({ t, bytes: this.sessionBytes });
    while (this.samples.length > 2 && t - this.samples[0]!.t > 5000) this.samples.shift();
    this.emit(this.snapshot(file, false));
  }

  snapshot(file: string, done: boolean): DownloadProgress {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const span = first && last ? (last.t - first.t) / 1000 : 0;
    const rate =
      span > 0.2
        ? (last!.bytes - first!.bytes) / span
        : this.sessionBytes / Math.max(0.001, (this.now() - this.started) / 1000);
    const left = this.total > 0 ? Math.max(0, this.total - this.loaded) : 0;
    return {
      file,
      loaded: this.loaded,
      total: this.total,
      rate,
      etaSeconds: this.total > 0 && rate > 0 ? left / rate : null,
      done,
    };
  }

  finish(file: string): void {
    this.emit(this.snapshot(file, true));
  }
}

/** One status line: "SmolVLM-256M-Instruct  123.4 MB / 250.0 MB  49%  12.3 MB/s  ETA 0:10". */
export function formatProgress(name: string, p: DownloadProgress): string {
  const pct = p.total > 0 ? ` ${Math.floor((p.loaded / p.total) * 100)}%` : '';
  const eta = p.done ? ' done' : p.etaSeconds !== null ? ` ETA ${formatDuration(p.etaSeconds)}` : '';
  const width = 24;
  const filled = p.total > 0 ? Math.round((p.loaded / p.total) * width) : 0;
  const bar = p.total > 0 ? ` [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]` : '';
  return `${name}${bar} ${formatBytes(p.loaded)}${p.total > 0 ? ' / ' + formatBytes(p.total) : ''}${pct}  ${formatBytes(p.rate)}/s${eta}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

function formatDuration(s: number): string {
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export function removeIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* not there */
  }
}
