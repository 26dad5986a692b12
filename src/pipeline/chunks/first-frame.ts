import { runProcess } from '../../process/run-process.js';
import type { StageContext } from '../context.js';
import type { MediaInfo } from '../media-info.js';
import type { EncodePlan } from '../plan.js';
import { processFailure } from '../process-failure.js';
import { timelineStart } from './plan-chunks.js';

/**
 * How far past a chunk's start its first frame is looked for before reading on to the chunk's end: past the
 * reordering of B-frames, little more (over http every second is read twice, here and by the encode).
 */
export const LOOK_AHEAD_SECONDS = 0.5;

/**
 * The time of the first frame a chunk's encoder gets: the first at or after `at` (the input's timeline). After a
 * frame rate limit that is a point of the limit's grid; otherwise the source's own frame, read from the
 * container's packets from the keyframe before `from` (no decoding). Undefined when there is none up to `until`.
 */
export async function firstFrameTime(o: {
  /** FFmpeg's input options through `-i`, as the chunk's encode opens it. */
  input: string[];
  media: MediaInfo;
  plan: Pick<EncodePlan, 'frameRateLimit'>;
  from: number;
  at: number;
  until?: number;
  ctx: StageContext;
}): Promise<number | undefined> {
  const limit = o.plan.frameRateLimit;
  // The `fps` filter's frames sit on its grid of 1/limit from 0.
  if (limit) return Math.ceil(o.at * limit - 1e-6) / limit;
  // FFprobe reads the container's own times; the encode shifts them so that its timeline starts at 0.
  const shift = timelineStart(o.media);
  const time = (t: number) => (t + shift).toFixed(6);
  const near = await packetTimes(o, `${time(o.from)}%${time(o.at + LOOK_AHEAD_SECONDS)}`, shift);
  const first = earliestFrom(near, o.at);
  if (first !== undefined || (o.until !== undefined && o.until <= o.at + LOOK_AHEAD_SECONDS)) return first;
  // A pause longer than the look-ahead (a screen recording's still picture): read on.
  const span = `${time(o.from)}%${o.until === undefined ? '' : time(o.until)}`;
  return earliestFrom(await packetTimes(o, span, shift), o.at);
}

/** Frames closer than this to `at` count as at it: the times are printed to the microsecond. */
export const SAME_TIME = 1e-6;

/** The earliest of `times` at or after `at`. */
export function earliestFrom(times: number[], at: number): number | undefined {
  const after = times.filter((t) => t >= at - SAME_TIME);
  return after.length ? Math.min(...after) : undefined;
}

async function packetTimes(
  o: { input: string[]; media: MediaInfo; ctx: StageContext },
  interval: string,
  shift: number,
): Promise<number[]> {
  const { ctx } = o;
  const args = [
    ...['-v', 'error', ...o.input],
    ...['-select_streams', String(o.media.video.index), '-read_intervals', interval],
    ...['-show_entries', 'packet=pts_time', '-of', 'csv=p=0'],
  ];
  try {
    const { stdout } = await runProcess(ctx.tools.ffprobe, args, {
      logger: ctx.logger,
      signal: ctx.signal,
      idleTimeoutMs: ctx.idleTimeoutMs,
      timeoutMs: ctx.maxRuntimeMs,
      tempDir: ctx.tempDir,
    });
    return stdout
      .split('\n')
      .map((l) => Number.parseFloat(l) - shift)
      .filter((t) => Number.isFinite(t));
  } catch (err) {
    throw processFailure(err, 'encode_failed', 'FFprobe could not read a chunk of the input', []);
  }
}
