import { inputGuardArgs } from './input-formats.js';
import type { MediaInfo } from './media-info.js';
import type { EncodePlan } from './plan.js';

export interface EncodeOutputs {
  /** Local file per rendition name. */
  video: Record<string, string>;
  audio?: string;
}

/**
 * The single FFmpeg invocation that encodes the whole ladder: the input is decoded once, split, and each
 * branch scaled to its rung. Every branch sees the same frames with the same timestamps, and keyframes are
 * forced by time, so segment boundaries line up across renditions.
 */
export function buildEncodeArgs(
  inputPath: string,
  media: MediaInfo,
  plan: EncodePlan,
  outputs: EncodeOutputs,
): string[] {
  const n = plan.renditions.length;
  const pre: string[] = [];
  if (plan.frameRateLimit) pre.push(`fps=${plan.frameRateLimit}`);
  // 8-bit 4:2:0 is what every H.264 player decodes; 10-bit or 4:4:4 sources are converted once, before the split.
  pre.push('format=yuv420p');
  const branches = plan.renditions.map((_, i) => `[s${i}]`).join('');
  const graph = [`[0:${media.video.index}]${pre.join(',')},split=${n}${branches}`];
  plan.renditions.forEach((r, i) => {
    // An explicit size with square pixels: non-square sources are resampled to their display shape.
    graph.push(`[s${i}]scale=${r.width}:${r.height}:flags=bicubic,setsar=1[v${i}]`);
  });

  const args = [
    '-hide_banner',
    '-nostdin',
    '-y',
    // Only the local file may be opened, and only as a video container: a key can never smuggle in
    // concat:, http: or another protocol, nor an upload a playlist that names other files.
    ...inputGuardArgs(),
    '-i',
    `file:${inputPath}`,
    '-filter_complex',
    graph.join(';'),
    '-progress',
    'pipe:1',
    '-nostats',
  ];

  const forceKeyframes = `expr:gte(t,n_forced*${plan.segmentDuration})`;
  plan.renditions.forEach((r, i) => {
    const file = outputs.video[r.name];
    if (!file) throw new Error(`no output path for ${r.name}`);
    args.push(
      '-map',
      `[v${i}]`,
      '-map_metadata',
      '-1',
      '-map_chapters',
      '-1',
      '-c:v',
      'libx264',
      '-preset',
      plan.preset,
      '-profile:v',
      'high',
      // Capped VBR: the target bitrate on average, peaks limited by maxrate over a bufsize window.
      '-b:v',
      String(r.bitrate),
      '-maxrate',
      String(r.maxrate),
      '-bufsize',
      String(r.bufsize),
      // A keyframe at every segment boundary (by time, so variable frame rate sources align too) and no
      // scene-cut keyframes, so every rendition cuts its segments at the same instants.
      '-force_key_frames',
      forceKeyframes,
      '-g',
      String(plan.gopFrames),
      '-sc_threshold',
      '0',
      '-an',
      '-f',
      'mp4',
      `file:${file}`,
    );
  });

  if (plan.audio && media.audio && outputs.audio) {
    args.push(
      '-map',
      `0:${media.audio.index}`,
      '-map_metadata',
      '-1',
      '-c:a',
      'aac',
      '-b:a',
      String(plan.audio.bitrate),
      // Stereo at 48 kHz plays everywhere; 5.1 sources are downmixed.
      '-ac',
      String(plan.audio.channels),
      '-ar',
      String(plan.audio.sampleRate),
      '-vn',
      '-f',
      'mp4',
      `file:${outputs.audio}`,
    );
  }
  return args;
}

/** Seconds of output written so far, from one line of `-progress pipe:1`; undefined for other lines. */
export function parseProgressLine(line: string): number | undefined {
  const m = /^out_time_(us|ms)=(\d+)$/.exec(line.trim());
  // Both keys are in microseconds (out_time_ms is misnamed in FFmpeg).
  return m ? Number(m[2]) / 1e6 : undefined;
}
