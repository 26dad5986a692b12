import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { runProcess } from '../process/run-process.js';
import type { StageContext, StageProgress } from './context.js';
import { buildEncodeArgs, parseProgressLine, type EncodeOutputs } from './ffmpeg-args.js';
import type { MediaInfo } from './media-info.js';
import type { EncodePlan } from './plan.js';
import { processFailure } from './process-failure.js';

/**
 * Encodes every rendition, the audio and the poster in one FFmpeg run; returns the files written. `poster` is
 * absent when the poster window held no video frame (a video stream shorter than the audio): the caller makes
 * one another way.
 */
export async function encode(
  inputPath: string,
  media: MediaInfo,
  plan: EncodePlan,
  outDir: string,
  ctx: StageContext,
  onProgress: StageProgress,
): Promise<EncodeOutputs> {
  await mkdir(outDir, { recursive: true });
  const outputs: EncodeOutputs = {
    video: Object.fromEntries(plan.renditions.map((r) => [r.name, path.join(outDir, `${r.name}.mp4`)])),
    audio: plan.audio ? path.join(outDir, 'audio.mp4') : undefined,
    poster: path.join(outDir, 'poster.jpg'),
  };
  const args = buildEncodeArgs(inputPath, media, plan, outputs);
  try {
    await runProcess(ctx.tools.ffmpeg, args, {
      logger: ctx.logger,
      signal: ctx.signal,
      idleTimeoutMs: ctx.idleTimeoutMs,
      timeoutMs: ctx.maxRuntimeMs,
      onStdoutLine: (line) => {
        const seconds = parseProgressLine(line);
        if (seconds !== undefined && media.duration > 0) onProgress(Math.min(1, seconds / media.duration));
      },
    });
  } catch (err) {
    throw processFailure(err, 'encode_failed', 'FFmpeg could not encode the input', [inputPath, outDir]);
  }
  if (outputs.poster && !(await stat(outputs.poster).catch(() => undefined))?.size)
    outputs.poster = undefined;
  return outputs;
}
