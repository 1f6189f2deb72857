/** Run ffmpeg or ffprobe with a time limit, collecting stdout; killed on timeout or cancellation. */
import { spawn } from 'node:child_process';
import { GlimpseError } from '../core/index.js';

export function runTool(
  program: string,
  args: string[],
  timeoutSeconds: number,
  signal?: AbortSignal,
  maxStdout = Infinity,
): Promise<{ stdout: Buffer; code: number | null }> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let failure: unknown;
    const kill = (why: unknown) => {
      failure ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(
      () =>
        kill(
          new GlimpseError(
            'video_decode_timeout',
            `The video took longer than the limit (video.decodeTimeoutSeconds) of ${timeoutSeconds} s to read, and was stopped.`,
            { param: 'video_url' },
          ),
        ),
      timeoutSeconds * 1000,
    );
    const onAbort = () => kill(signal?.reason ?? new DOMException('aborted', 'AbortError'));
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // More output than the frames asked for can be: stop rather than buffer it.
      if (size > maxStdout)
        kill(
          new GlimpseError('invalid_video', 'The video decoded to more frames than were asked for.', {
            param: 'video_url',
          }),
        );
      else chunks.push(chunk);
    });
    child.once('error', (err) => kill(err));
    child.once('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (failure) reject(failure);
      else resolve({ stdout: Buffer.concat(chunks), code });
    });
  });
}
