import path from 'node:path';
import type { StageContext, StageProgress } from './context.js';
import { buildEncodeArgs, imageFrame, parseProgressLine, type EncodeOutputs } from './ffmpeg-args.js';
import type { MediaInfo } from './media-info.js';
import type { EncodePlan } from './plan.js';
import { hasContent } from './poster.js';
import { runFfmpeg } from './run-ffmpeg.js';
import { thumbnailOutputsIn } from './thumbnails.js';

/**
 * Where the encode writes each stream of the plan (regular files or pipes), the poster and the thumbnails,
 * inside `dir`.
 */
export function encodeOutputsIn(dir: string, plan: EncodePlan): EncodeOutputs {
  return {
    video: Object.fromEntries(plan.renditions.map((r) => [r.name, path.join(dir, `${r.name}.mp4`)])),
    audio: Object.fromEntries(plan.audioTracks.map((a) => [a.name, path.join(dir, `${a.name}.mp4`)])),
    poster: path.join(dir, 'poster-%d.jpg'),
    thumbnails: plan.thumbnails ? thumbnailOutputsIn(dir) : undefined,
  };
}

/** What `encode` runs: the plan's streams from `inputPath` into `outputs`. */
export interface EncodeJob {
  inputPath: string;
  media: MediaInfo;
  plan: EncodePlan;
  outputs: EncodeOutputs;
  ctx: StageContext;
  onProgress: StageProgress;
}

/**
 * Encodes every rendition, the audio and the poster in one FFmpeg run into `outputs` (fragmented MP4, so
 * pipes work); no poster when its window held no video frame, and the caller makes one another way.
 */
export async function encode(job: EncodeJob): Promise<{ poster: boolean }> {
  const { inputPath, media, plan, outputs, ctx, onProgress } = job;
  const args = buildEncodeArgs({ inputPath, media, plan, outputs });
  const outDirs = new Set(Object.values(outputs.video).map((f) => path.dirname(f)));
  await runFfmpeg({
    args,
    ctx,
    code: 'encode_failed',
    what: 'FFmpeg could not encode the input',
    hidePaths: [inputPath, ...outDirs],
    onStdoutLine: (line) => {
      const seconds = parseProgressLine(line);
      if (seconds !== undefined && media.duration > 0) onProgress(Math.min(1, seconds / media.duration));
    },
  });
  const poster = !!outputs.poster && (await hasContent(imageFrame(outputs.poster, 1)));
  return { poster };
}
