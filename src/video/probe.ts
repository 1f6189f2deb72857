/**
 * A video's container, duration and frame size, from its header (ffprobe reads no frames), so a
 * video that claims ten hours or 8K is refused before anything is decoded.
 */
import { GlimpseError } from '../core/index.js';
import { runTool } from './run.js';
import type { VideoSettings } from './index.js';

export interface VideoInfo {
  mime: 'video/mp4' | 'video/quicktime' | 'video/webm' | 'video/x-matroska';
  durationSeconds: number;
  /** Display size: after the rotation the container asks for, as ffmpeg will decode it. */
  width: number;
  height: number;
}

export function invalidVideo(message: string, cause?: unknown): GlimpseError {
  return new GlimpseError('invalid_video', message, { param: 'video_url', cause });
}

const EBML = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
const ISO_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'wide', 'skip']);

/** Refuse bytes that are no video container we take, before any program runs on them. */
export function sniffVideo(data: Buffer): void {
  if (data.length >= 8 && (data.subarray(0, 4).equals(EBML) || ISO_BOXES.has(data.toString('latin1', 4, 8)))) return;
  throw invalidVideo('The video could not be read: its bytes are not MP4, MOV, WebM or MKV.');
}

interface ProbeJson {
  format?: { format_name?: string; duration?: string };
  streams?: Array<{
    codec_type?: string;
    width?: number;
    height?: number;
    duration?: string;
    tags?: { rotate?: string };
    side_data_list?: Array<{ rotation?: number }>;
  }>;
}

export async function probeVideo(
  ffprobe: string,
  file: string,
  s: VideoSettings,
  signal?: AbortSignal,
): Promise<VideoInfo> {
  const { stdout, code } = await runTool(
    ffprobe,
    ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file],
    s.decodeTimeoutSeconds,
    signal,
  );
  let info: ProbeJson;
  try {
    info = JSON.parse(stdout.toString('utf8')) as ProbeJson;
  } catch (err) {
    throw invalidVideo('The video could not be read: its container is damaged.', err);
  }
  if (code !== 0 || !info.format)
    throw invalidVideo('The video could not be read: its container is damaged or incomplete.');
  const names = (info.format.format_name ?? '').split(',');
  const mime = names.includes('webm')
    ? 'video/webm'
    : names.includes('matroska')
      ? 'video/x-matroska'
      : names.includes('mp4')
        ? 'video/mp4'
        : names.includes('mov')
          ? 'video/quicktime'
          : undefined;
  if (!mime)
    throw invalidVideo(`The video's container (${info.format.format_name ?? 'unknown'}) is not MP4, MOV, WebM or MKV.`);
  const stream = info.streams?.find((st) => st.codec_type === 'video');
  if (!stream?.width || !stream.height) throw invalidVideo('The file has no video stream.');
  const duration = Number(info.format.duration ?? stream.duration);
  if (!(duration > 0)) throw invalidVideo('The video has no duration in its header (damaged or incomplete).');
  if (duration > s.maxDurationSeconds) {
    throw new GlimpseError(
      'video_too_long',
      `The video is ${Math.round(duration)} s long; the limit (video.maxDurationSeconds) is ${s.maxDurationSeconds} s.`,
      { param: 'video_url' },
    );
  }
  if (stream.width * stream.height > s.maxPixels) {
    throw new GlimpseError(
      'video_resolution_too_large',
      `The video is ${stream.width}x${stream.height}; the limit (video.maxPixels) is ${s.maxPixels} pixels a frame.`,
      { param: 'video_url' },
    );
  }
  const rotation =
    Math.abs(
      Number(stream.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? stream.tags?.rotate ?? 0),
    ) % 180;
  const [width, height] = rotation === 90 ? [stream.height, stream.width] : [stream.width, stream.height];
  return { mime, durationSeconds: duration, width, height };
}
