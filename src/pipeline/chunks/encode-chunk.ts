import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { StageContext } from '../context.js';
import { encodeOutputsIn } from '../encode.js';
import {
  audioOutputArgs,
  buildEncodeArgs,
  imageFrame,
  parseProgressLine,
  posterFps,
} from '../ffmpeg-args.js';
import type { MediaInfo } from '../media-info.js';
import type { EncodePlan } from '../plan.js';
import { hasContent, posterWindow } from '../poster.js';
import { parseTimes, thumbnailOutputsIn } from '../thumbnails.js';
import { runFfmpeg } from '../run-ffmpeg.js';
import { presentationEnd } from '../text-tracks.js';
import { withChunkInput } from './chunk-input.js';
import { firstFrameTime } from './first-frame.js';
import { readStartFromTheTop } from './chunk-starts.js';
import {
  hasSeekIndex,
  isLastChunk,
  PREROLL_SECONDS,
  startsAtStreamsInUse,
  videoOrigin,
  type ChunkSpan,
} from './plan-chunks.js';

/**
 * Without a seek index (MPEG-TS), how far a chunk seeks before the keyframe it decodes from: FFmpeg lands on any
 * packet decoded at or before the time asked, and a keyframe is decoded before it is shown by the reordering of
 * B-frames (at most 16 frames in H.264/HEVC); landing before the keyframe's packet, decoding starts at a keyframe.
 */
const NO_INDEX_SEEK_MARGIN = { seconds: 1, frames: 16 };

/** Rounding of the times the expression compares, far below a frame's duration. */
const KEYFRAME_MARGIN_SECONDS = 1e-5;

export interface VideoChunkJob {
  /** A local path, or an http(s) URL (presigned) that FFmpeg reads in byte ranges. */
  input: string;
  media: MediaInfo;
  plan: EncodePlan;
  chunk: ChunkSpan;
  outDir: string;
  ctx: StageContext;
  onProgress?: (fraction: number) => void;
}

/** What a chunk made: its file per rendition, and its share of the whole video's images. */
export interface VideoChunkResult {
  files: Record<string, string>;
  /** The time of its first frame, as its files have it (where the stitch joins it to the chunk before). */
  firstFrame?: number;
  /**
   * The seek-bar thumbnails of the whole video's grid that the chunk's frames fill, by their slot (time ÷
   * interval), each a JPEG of the thumbnail's size; the stitch tiles them into the sheets.
   */
  thumbnails?: Record<number, string>;
  /** The chunk's pick for the poster, when the poster window overlaps it and a frame there is not dark. */
  poster?: string;
}

/**
 * Every video rendition of the plan for one chunk, from one decode (the same filter graph and encoders as the
 * whole run's): decoding starts at the keyframe before the chunk, the frames before its start and from its end
 * on are dropped by their times, keyframes fall at its segments' starts, and the frames keep the input's
 * timestamps, so the chunks of a rendition join into the timeline one run makes. One fragmented MP4 per
 * rendition name, in `outDir`; the same run's other branches make the chunk's thumbnails and poster candidate.
 */
export async function encodeVideoChunk(o: VideoChunkJob): Promise<VideoChunkResult> {
  const { media, plan, chunk, ctx } = o;
  await mkdir(o.outDir, { recursive: true });
  const { video } = encodeOutputsIn(o.outDir, plan);
  const last = isLastChunk(chunk, media, plan);
  const origin = videoOrigin(media, plan);
  const start = roundTime(origin + chunk.start);
  const end = last ? Infinity : roundTime(origin + chunk.end);
  // Straight to the keyframe the index gave (readChunkStarts), unless a filter needs the frames before it.
  const framesBefore = plan.deinterlace || plan.frameRateLimit !== undefined;
  const indexed = hasSeekIndex(media.formatName);
  const indexedSeek =
    chunk.keyframe !== undefined && chunk.start > 0 && !framesBefore
      ? chunk.keyframe
      : Math.max(0, start - PREROLL_SECONDS);
  // Without an index: before the keyframe decoding starts from (the file's start when there is none before).
  const margin = Math.max(
    NO_INDEX_SEEK_MARGIN.seconds,
    NO_INDEX_SEEK_MARGIN.frames / (media.video.frameRate || 30),
  );
  const unindexedSeek = (c: ChunkSpan) => {
    const key = framesBefore ? c.prerollKeyframe : c.keyframe;
    return key === undefined ? 0 : Math.max(0, roundTime(key - margin));
  };
  // The poster window (a fifth in, as the whole run looks) on the input's timeline: its chunks pick in it.
  const pfps = posterFps(media, plan);
  const window = posterWindow(media, pfps);
  const posterAt = roundTime(origin + window.at);
  const posterHere = posterAt < end && posterAt + (window.frames + 1) / pfps > start;
  const images = {
    poster: posterHere ? path.join(o.outDir, 'poster-%d.jpg') : undefined,
    thumbnails: plan.thumbnails ? thumbnailOutputsIn(path.join(o.outDir, 'thumbnails')) : undefined,
  };
  if (images.thumbnails) await mkdir(path.dirname(images.thumbnails.pattern), { recursive: true });
  const span = (input: string[], seekTo: number, firstFrame: number) => ({
    input,
    seekTo,
    start,
    ...(last ? {} : { end }),
    // Less a hair: the frame at the segment's very time is the whole run's keyframe too.
    keyframeOffset: Math.min(0, start - firstFrame) - KEYFRAME_MARGIN_SECONDS,
    ...(posterHere ? { posterAt } : {}),
  });
  // FFmpeg's output time stays at 0 with the input's timestamps kept: progress is counted in frames. The last
  // chunk runs to where the package's video ends (its last frame held to the audio's end when planned).
  const fps = plan.frameRateLimit ?? (media.video.frameRate || 30);
  const frames = Math.max(
    1,
    ((last ? presentationEnd(media, plan) - origin : chunk.end) - chunk.start) * fps,
  );
  const onLine = (line: string) => {
    const frame = /^frame=(\d+)$/.exec(line.trim())?.[1];
    if (frame !== undefined) o.onProgress?.(Math.min(1, Number(frame) / frames));
  };
  let firstFrame: number | undefined;
  await withChunkInput(
    o.input,
    async (input) => {
      // A chunk of an input without an index that came without its keyframes reads them from the file's start.
      const known = framesBefore ? chunk.prerollKeyframe : chunk.keyframe;
      const read =
        indexed || chunk.start === 0 || known !== undefined
          ? chunk
          : await readStartFromTheTop({ input, media, plan, chunk, ctx });
      const seekTo = indexed || chunk.start === 0 ? indexedSeek : unindexedSeek(read);
      // Keyframes by count need no time (canSplit let them through only on a whole grid of frames); after a
      // frame rate limit the first frame is a point of its grid, not the source's (firstFrameTime).
      firstFrame = plan.keyframesByCount
        ? start
        : ((plan.frameRateLimit ? undefined : read.firstFrame) ??
          (await firstFrameTime({
            input,
            media,
            plan,
            from: seekTo,
            at: start,
            until: last ? undefined : origin + chunk.end,
            ctx,
          })));
      await runFfmpeg({
        args: buildEncodeArgs({
          inputPath: o.input,
          media,
          plan,
          outputs: { video, audio: {}, ...images },
          span: span(input, seekTo, firstFrame ?? start),
        }),
        ctx,
        code: 'encode_failed',
        what: 'FFmpeg could not encode a chunk of the input',
        hidePaths: [o.outDir],
        onStdoutLine: onLine,
      });
    },
    ctx.logger,
  );
  const result: VideoChunkResult = { files: video, ...(firstFrame !== undefined ? { firstFrame } : {}) };
  const posterFile = images.poster && imageFrame(images.poster, 1);
  if (posterFile && (await hasContent(posterFile))) result.poster = posterFile;
  if (images.thumbnails && plan.thumbnails) {
    // Frame 0 is the primer; frame i the i-th time listed, which the fps filter put on the grid.
    const times = parseTimes(await readFile(images.thumbnails.times, 'utf8').catch(() => ''));
    const thumbnails: Record<number, string> = {};
    for (const [i, t] of times.entries()) {
      const file = imageFrame(images.thumbnails.pattern, i + 1);
      if (await hasContent(file)) thumbnails[Math.round(t / plan.thumbnails.interval)] = file;
    }
    result.thumbnails = thumbnails;
  }
  return result;
}

export interface WholeAudioJob {
  input: string;
  media: MediaInfo;
  plan: EncodePlan;
  /** The first audio track's file; the others go beside it, each named after its track. */
  outFile: string;
  ctx: StageContext;
  onProgress?: (fraction: number) => void;
}

/**
 * Every audio track of the whole input in one run, as the unsplit encode makes them (copied or encoded,
 * fragmented MP4): never in chunks, whose AAC priming and frame boundaries would click at every join.
 * `files` by track name, `file` the first track's; undefined when the plan has no audio.
 */
export async function encodeWholeAudio(
  o: WholeAudioJob,
): Promise<{ file: string; files: Record<string, string> } | undefined> {
  const dir = path.dirname(o.outFile);
  const files = Object.fromEntries(
    o.plan.audioTracks.map((t, i) => [t.name, i === 0 ? o.outFile : path.join(dir, `${t.name}.mp4`)]),
  );
  const audio = audioOutputArgs(o.plan, files);
  if (audio.length === 0) return undefined;
  await mkdir(dir, { recursive: true });
  const duration = Math.max(1e-3, o.media.duration);
  const onLine = (line: string) => {
    const seconds = parseProgressLine(line);
    if (seconds !== undefined) o.onProgress?.(Math.min(1, seconds / duration));
  };
  await withChunkInput(
    o.input,
    (input) =>
      runFfmpeg({
        args: [
          ...['-hide_banner', '-nostdin', '-y'],
          ...input,
          ...['-progress', 'pipe:1', '-nostats'],
          ...audio,
          // MPEG-TS: the video read too (copied to nothing), so that FFmpeg starts the audio's timeline where
          // one run does, at the earliest of video and audio, not at the audio's own start.
          ...(startsAtStreamsInUse(o.media.formatName)
            ? ['-map', `0:${o.media.video.index}`, '-c', 'copy', '-f', 'null', '-']
            : []),
        ],
        ctx: o.ctx,
        code: 'encode_failed',
        what: 'FFmpeg could not encode the audio',
        hidePaths: [dir],
        onStdoutLine: onLine,
      }),
    o.ctx.logger,
  );
  return { file: o.outFile, files };
}

/** Times as FFmpeg is given them, to the microsecond: the same value ends a chunk and starts the next. */
function roundTime(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}
