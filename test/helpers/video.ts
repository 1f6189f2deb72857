/** Small real videos for tests, made with Debian's ffmpeg from its test pattern. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An H.264 MP4 of `seconds` of ffmpeg's moving test pattern at `size` (WxH). */
export function makeMp4(seconds = 2, size = '320x240'): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-test-video-'));
  try {
    const file = join(dir, 'v.mp4');
    execFileSync(
      'ffmpeg',
      ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=10`, '-t', String(seconds)].concat([
        '-pix_fmt',
        'yuv420p',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        file,
      ]),
      { stdio: 'ignore' },
    );
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
