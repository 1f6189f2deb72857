/**
 * Office files to PDF with LibreOffice, headless. One conversion at a time (LibreOffice keeps one
 * profile and is not built for concurrent use of it), each time-limited: a conversion past
 * documents.conversionTimeoutSeconds is killed with its whole process group. The profile lives in
 * a directory of this process, so LibreOffice's first-start cost is paid once.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GlimpseError } from '../core/index.js';
import { findProgram } from './programs.js';
import type { DocumentSettings } from './render.js';

const INSTALL_HINT =
  'install LibreOffice (Debian: apt-get install libreoffice-impress libreoffice-writer libreoffice-calc)';

let queue: Promise<unknown> = Promise.resolve();
let profile: Promise<string> | undefined;

/** The PDF LibreOffice makes of `data`. Throws GlimpseError (415 when LibreOffice is not installed). */
export async function officeToPdf(data: Buffer, s: DocumentSettings, signal?: AbortSignal): Promise<Buffer> {
  const program = await findProgram(s.libreOffice);
  if (!program)
    throw new GlimpseError(
      'document_converter_missing',
      `Office documents need LibreOffice to be converted to PDF, and this server has none: ${INSTALL_HINT}, or send a PDF.`,
      { param: 'file' },
    );
  const turn = queue.then(() => convert(program, data, s, signal));
  queue = turn.catch(() => {});
  return turn;
}

async function convert(program: string, data: Buffer, s: DocumentSettings, signal?: AbortSignal): Promise<Buffer> {
  signal?.throwIfAborted();
  profile ??= mkdtemp(join(tmpdir(), 'glimpse-libreoffice-profile-'));
  const dir = await mkdtemp(join(tmpdir(), 'glimpse-convert-'));
  try {
    // LibreOffice picks its import filter from the content; the name only needs an extension it accepts.
    const input = join(dir, 'document.bin');
    await writeFile(input, data);
    const args = [
      '--headless',
      '--norestore',
      '--nologo',
      '--nolockcheck',
      `-env:UserInstallation=${pathToFileURL(await profile).href}`,
      '--convert-to',
      'pdf',
      '--outdir',
      dir,
      input,
    ];
    await run(program, args, s, signal);
    try {
      return await readFile(join(dir, 'document.pdf'));
    } catch {
      throw new GlimpseError(
        'document_conversion_failed',
        'LibreOffice could not read the Office file (it made no PDF of it).',
        { param: 'file' },
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(program: string, args: string[], s: DocumentSettings, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    // Its own process group, so the kill reaches the soffice.bin LibreOffice's launcher starts.
    const child = spawn(program, args, { stdio: 'ignore', detached: true });
    let failure: unknown;
    const kill = (why: unknown) => {
      failure ??= why;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(
      () =>
        kill(
          new GlimpseError(
            'document_conversion_failed',
            `LibreOffice took longer than the limit (documents.conversionTimeoutSeconds) of ${s.conversionTimeoutSeconds} s to convert the file, and was stopped.`,
            { param: 'file' },
          ),
        ),
      s.conversionTimeoutSeconds * 1000,
    );
    const onAbort = () => kill(signal?.reason ?? new DOMException('aborted', 'AbortError'));
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) =>
      kill(
        new GlimpseError('document_conversion_failed', `LibreOffice could not be started: ${err.message}.`, {
          param: 'file',
          cause: err,
        }),
      ),
    );
    child.once('close', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (failure) reject(failure);
      else resolve();
    });
  });
}
