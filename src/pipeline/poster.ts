import { runProcess } from '../process/run-process.js';
import { inputGuardArgs } from './input-formats.js';
import type { StageContext } from './context.js';
import type { MediaInfo } from './media-info.js';
import type { Rendition } from './plan.js';
import { processFailure } from './process-failure.js';

export const POSTER_NAME = 'poster.jpg';

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
  const at = media.duration > 1 ? media.duration * 0.2 : 0;
  const framesToCompare = Math.max(
    1,
    Math.min(50, Math.floor((media.duration - at) * (media.video.frameRate || 25) * 0.8)),
  );
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
