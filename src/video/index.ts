/**
 * Videos for the image pipeline. A video part is either kept whole (resolved with its bytes) for
 * an engine that takes video, or replaced in its message by sampled frames, each a timestamp
 * text part and a resolved image part, so every other engine gets the same frames. ffmpeg
 * decodes (found on PATH, or video.ffmpeg); the header is checked by ffprobe before any decode.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Config } from '../config/index.js';
import {
  GlimpseError,
  type ContentPart,
  type GenerateRequest,
  type ImageInput,
  type MediaOrigin,
  type VideoPart,
} from '../core/index.js';
import { findProgram, mediaBytes } from '../documents/index.js';
import { fitToBudget, fromPixels, imageSettings, shareOf, thumbnailUrl } from '../images/index.js';
import { invalidVideo, probeVideo, sniffVideo, type VideoInfo } from './probe.js';
import { runTool } from './run.js';

export type VideoSettings = Config['video'];

const INSTALL_HINT = 'install ffmpeg (Debian: apt-get install ffmpeg)';

/**
 * GLM-4.6V's sampling rule: about 3 frames a second up to 30 s, 1 a second up to 300 s, one every
 * 2 s beyond, then thinned evenly to `maxFrames`. Times are the middles of equal slices, so the
 * first and last frames are inside the video.
 */
export function sampleTimes(durationSeconds: number, maxFrames: number): number[] {
  const fps = durationSeconds <= 30 ? 3 : durationSeconds <= 300 ? 1 : 0.5;
  const count = Math.max(1, Math.min(maxFrames, Math.floor(durationSeconds * fps)));
  return Array.from({ length: count }, (_, i) => ((i + 0.5) * durationSeconds) / count);
}

async function programs(s: VideoSettings): Promise<{ ffmpeg: string; ffprobe: string }> {
  const ffmpeg = await findProgram(s.ffmpeg);
  const ffprobe = ffmpeg
    ? ((await findProgram(join(dirname(ffmpeg), 'ffprobe'))) ?? (await findProgram('ffprobe')))
    : undefined;
  if (!ffmpeg || !ffprobe)
    throw new GlimpseError(
      'video_decoder_missing',
      `Videos need ffmpeg and ffprobe to be read, and this server has none: ${INSTALL_HINT}.`,
      { param: 'video_url' },
    );
  return { ffmpeg, ffprobe };
}

/** The frames at `times`, each at its share of video.totalPixels, as 8-bit RGB. */
async function sampleFrames(
  ffmpeg: string,
  file: string,
  info: VideoInfo,
  times: number[],
  config: Pick<Config, 'images' | 'documents' | 'video'>,
  signal?: AbortSignal,
) {
  const s = config.video;
  const images = imageSettings(config);
  const share = shareOf(s.totalPixels, times.length, config.documents.minPagePixels, config.documents.maxPagePixels);
  const size = fitToBudget(
    info.width,
    info.height,
    share,
    Math.min(share, config.documents.minPagePixels),
    images.patchMultiple,
  );
  const frameBytes = size.width * size.height * 3;
  // One pass: the fps filter keeps one frame per slice (the frame nearest each slice's middle), scaled once.
  const rate = `${times.length}/${info.durationSeconds}`;
  const args = [
    '-v',
    'error',
    '-nostdin',
    '-i',
    file,
    '-an',
    '-sn',
    '-vf',
    `fps=${rate}:round=near,scale=${size.width}:${size.height}:flags=bicubic`,
    '-frames:v',
    String(times.length),
    '-pix_fmt',
    'rgb24',
    '-f',
    'rawvideo',
    'pipe:1',
  ];
  const { stdout } = await runTool(ffmpeg, args, s.decodeTimeoutSeconds, signal, frameBytes * times.length);
  const count = Math.floor(stdout.length / frameBytes);
  if (count === 0)
    throw invalidVideo('The video could not be decoded: no frame came out of it (damaged or truncated).');
  return Array.from({ length: count }, (_, i) => ({
    rgb: stdout.subarray(i * frameBytes, (i + 1) * frameBytes),
    ...size,
    at: times[i],
  }));
}

function timestamp(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const sec = (seconds - m * 60).toFixed(1).padStart(4, '0');
  return `${m}:${sec}`;
}

/** One video: kept whole (`keep`) after its header passed, or its frames as marker and image parts. */
async function videoParts(
  part: VideoPart,
  config: Pick<Config, 'images' | 'documents' | 'video'>,
  output: ImageInput,
  keep: boolean,
  thumbnails: boolean,
  signal?: AbortSignal,
): Promise<ContentPart[]> {
  const s = config.video;
  const data = await mediaBytes(
    part,
    config,
    { maxBytes: s.maxBytes, setting: 'video.maxBytes', noun: 'video', code: 'video_too_large' },
    signal,
  );
  sniffVideo(data);
  const { ffmpeg, ffprobe } = await programs(s);
  // A file, not a pipe: MP4s often keep their index at the end, which a pipe cannot seek to.
  const dir = await mkdtemp(join(tmpdir(), 'glimpse-video-'));
  try {
    const file = join(dir, 'video');
    await writeFile(file, data);
    const info = await probeVideo(ffprobe, file, s, signal);
    if (keep) {
      const sha256 = createHash('sha256').update(data).digest('hex');
      return [
        {
          ...part,
          resolved: {
            data,
            mime: info.mime,
            durationSeconds: info.durationSeconds,
            width: info.width,
            height: info.height,
            sha256,
          },
        },
      ];
    }
    const frames = await sampleFrames(
      ffmpeg,
      file,
      info,
      sampleTimes(info.durationSeconds, s.maxFrames),
      config,
      signal,
    );
    const images = imageSettings(config);
    const [resolved, views] = await Promise.all([
      Promise.all(frames.map((f) => fromPixels(Buffer.from(f.rgb), f.width, f.height, 'video', images, output))),
      thumbnails ? Promise.all(frames.map((f) => thumbnailUrl(f.rgb, f.width, f.height))) : undefined,
    ]);
    const from: MediaOrigin = {
      kind: 'video',
      count: frames.length,
      durationSeconds: info.durationSeconds,
      ...(views ? { thumbnails: views } : {}),
    };
    return resolved.flatMap((img, i): ContentPart[] => [
      { type: 'text', text: `Frame at ${timestamp(frames[i].at)}` },
      { type: 'image', source: { kind: 'bytes', data: Buffer.alloc(0) }, resolved: img, from },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Resolve every video part of the request: kept whole when `keep` (the engine takes video), else
 * replaced by its frames. Videos are read concurrently; the first refusal cancels the rest.
 */
export async function expandVideos(
  req: GenerateRequest,
  config: Pick<Config, 'images' | 'documents' | 'video'>,
  output: ImageInput,
  keep: boolean,
  signal?: AbortSignal,
  thumbnails = false,
): Promise<void> {
  const found = req.messages.flatMap((m) =>
    m.content.filter((p): p is VideoPart => p.type === 'video' && !p.resolved).map((part) => ({ m, part })),
  );
  if (!found.length) return;
  const group = new AbortController();
  const groupSignal = signal ? AbortSignal.any([signal, group.signal]) : group.signal;
  let done: ContentPart[][];
  try {
    done = await Promise.all(found.map(({ part }) => videoParts(part, config, output, keep, thumbnails, groupSignal)));
  } catch (err) {
    group.abort();
    throw err;
  }
  found.forEach(({ m, part }, i) => m.content.splice(m.content.indexOf(part), 1, ...done[i]));
}
