import { stat } from 'node:fs/promises';
import { TaskFailure } from '../errors.js';
import { runProcess } from '../process/run-process.js';
import { inputGuardArgs } from './input-formats.js';
import type { StageContext } from './context.js';
import { DEINTERLACE, toneMapToSdr, zimgResize } from './video-filters.js';
import type { MediaInfo } from './media-info.js';
import type { EncodePlan, Rendition } from './plan.js';
import { processFailure } from './process-failure.js';

export const POSTER_NAME = 'poster.jpg';

/**
 * Frames compared by FFmpeg's `thumbnail` filter to choose the poster: enough to step past a flash or a blurred
 * frame (0.4 s at 30 fps). Histograms of full-size frames are what it costs: 50 frames took 0.2 s of CPU on a
 * 1080p source, whatever the input's length (BENCHMARKS.md).
 */
export const POSTER_CANDIDATE_FRAMES = 12;

/**
 * Where the poster is looked for: a fifth of the way into the video (past black openings and titles; the video
 * may end long before the audio does), and how many frames.
 */
export function posterWindow(media: MediaInfo, fps: number): { at: number; frames: number } {
  const span = media.video.duration ?? media.duration;
  const at = span > 1 ? span * 0.2 : 0;
  const frames = Math.max(1, Math.min(POSTER_CANDIDATE_FRAMES, Math.floor((span - at) * fps * 0.8)));
  return { at, frames };
}

/**
 * The most representative of `frames` frames (FFmpeg's `thumbnail`) at `size` with square pixels, for the encode
 * run's poster branch and `makePoster` alike. HDR frames are tone-mapped at the poster's size first, so that
 * `thumbnail` compares what the poster shows. With a single frame to choose from (a still picture over audio,
 * a very low frame rate), that frame: `thumbnail` takes two at least.
 */
export function posterPick(
  plan: Pick<EncodePlan, 'toneMap'>,
  size: Pick<Rendition, 'width' | 'height'>,
  frames: number,
): string[] {
  const thumbnail = frames >= 2 ? [`thumbnail=n=${frames}`] : [];
  const pick = plan.toneMap
    ? [toneMapToSdr(zimgResize(size, 'bicubic')), ...thumbnail]
    : [...thumbnail, `scale=${size.width}:${size.height}:flags=bicubic`];
  return [...pick, 'setsar=1'];
}

/**
 * Writes one JPEG frame that stands for the video: from a fifth of the way in (past black openings and
 * titles), the most representative of the next frames (FFmpeg's `thumbnail` filter), at the top rung's size.
 * When that window holds no frame (the container's duration overstated the video's), from the first frames.
 */

export async function makePoster(
  inputPath: string,
  media: MediaInfo,
  plan: Pick<EncodePlan, 'deinterlace' | 'toneMap'>,
  size: Pick<Rendition, 'width' | 'height'>,
  outFile: string,
  ctx: StageContext,
): Promise<void> {
  const window = posterWindow(media, media.video.frameRate || 25);
  await extractPoster(inputPath, media, plan, size, outFile, ctx, window);
  if (await hasContent(outFile)) return;
  // FFmpeg exits 0 without writing anything when no frame reached the output.
  if (window.at > 0) await extractPoster(inputPath, media, plan, size, outFile, ctx, { ...window, at: 0 });
  if (!(await hasContent(outFile))) {
    throw new TaskFailure('not_a_video', 'the video stream has no frame that can be decoded');
  }
}

/** Whether FFmpeg wrote the file: it exits 0 without writing an image output that no frame reached. */
export async function hasContent(file: string): Promise<boolean> {
  return !!(await stat(file).catch(() => undefined))?.size;
}

async function extractPoster(
  inputPath: string,
  media: MediaInfo,
  plan: Pick<EncodePlan, 'deinterlace' | 'toneMap'>,
  size: Pick<Rendition, 'width' | 'height'>,
  outFile: string,
  ctx: StageContext,
  { at, frames: framesToCompare }: { at: number; frames: number },
): Promise<void> {
  try {
    await runProcess(
      ctx.tools.ffmpeg,
      [
        '-hide_banner',
        '-nostdin',
        '-y',
        '-v',
        'error',
        ...inputGuardArgs(),
        '-ss',
        at.toFixed(3),
        '-i',
        `file:${inputPath}`,
        '-map',
        `0:${media.video.index}`,
        '-vf',
        [...(plan.deinterlace ? [DEINTERLACE] : []), ...posterPick(plan, size, framesToCompare)].join(','),
        '-frames:v',
        '1',
        '-q:v',
        '3',
        '-update',
        '1',
        `file:${outFile}`,
      ],
      {
        logger: ctx.logger,
        signal: ctx.signal,
        idleTimeoutMs: ctx.idleTimeoutMs,
        timeoutMs: ctx.maxRuntimeMs,
      },
    );
  } catch (err) {
    throw processFailure(err, 'encode_failed', 'FFmpeg could not extract a poster frame', [
      inputPath,
      outFile,
    ]);
  }
}
