import { runProcess } from '../process/run-process.js';
import { inputGuardArgs } from './input-formats.js';
import type { StageContext } from './context.js';
import type { MediaInfo } from './media-info.js';
import type { Rendition } from './plan.js';
import { processFailure } from './process-failure.js';

export const POSTER_NAME = 'poster.jpg';

/**
 * Frames compared by FFmpeg's `thumbnail` filter to choose the poster: enough to step past a flash or a blurred
 * frame (0.4 s at 30 fps). Histograms of full-size frames are what it costs: 50 frames took 0.2 s of CPU on a
 * 1080p source, whatever the input's length (BENCHMARKS.md).
 */
export const POSTER_CANDIDATE_FRAMES = 12;

/** Where the poster is looked for: a fifth of the way in (past black openings and titles), and how many frames. */
export function posterWindow(media: MediaInfo, fps: number): { at: number; frames: number } {
  const at = media.duration > 1 ? media.duration * 0.2 : 0;
  const frames = Math.max(
    1,
    Math.min(POSTER_CANDIDATE_FRAMES, Math.floor((media.duration - at) * fps * 0.8)),
  );
  return { at, frames };
}

/**
 * Writes one JPEG frame that stands for the video: from a fifth of the way in (past black openings and
 * titles), the most representative of the next frames (FFmpeg's `thumbnail` filter), at the top rung's size.
 */
export async function makePoster(
  inputPath: string,
  media: MediaInfo,
  size: Pick<Rendition, 'width' | 'height'>,
  outFile: string,
  ctx: StageContext,
): Promise<void> {
  const { at, frames: framesToCompare } = posterWindow(media, media.video.frameRate || 25);
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
        `thumbnail=n=${framesToCompare},scale=${size.width}:${size.height},setsar=1`,
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
