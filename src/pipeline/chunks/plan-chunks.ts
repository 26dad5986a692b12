import type { MediaInfo } from '../media-info.js';
import type { EncodePlan } from '../plan.js';

/**
 * One part of a split input: seconds on the video's timeline (0 = its first frame, where the whole run's
 * segments count from: see `videoOrigin`), `end` excluded; the last part reads to the end of the input.
 */
export interface ChunkSpan {
  index: number;
  start: number;
  end: number;
  /**
   * From the input's index (readChunkStarts), on the timeline FFmpeg gives the input (its start at 0): the
   * latest keyframe at or before the start, where decoding begins; the chunk's first frame; and the bytes from
   * its keyframe to the next chunk's. Absent when the index did not tell (the chunk job then probes itself).
   */
  keyframe?: number;
  firstFrame?: number;
  bytes?: number;
}

/**
 * A last part shorter than this joins the one before: a few frames are not worth a job of their own.
 */
const MIN_LAST_CHUNK_SECONDS = 0.5;

/**
 * The parts of an input of `duration` seconds (the probe's `media.duration`, which alone decides whether it is
 * split) whose video spans `videoSeconds` of it (`videoSpan`; `duration` when not given): about `chunkSeconds`
 * each, rounded to whole segments (at least one), so that every part starts where a segment does; the last one
 * takes the rest of the video and may be shorter than a segment. `[]` when the input is not split:
 * `chunkSeconds` 0, an input no longer than `minInputSeconds`, or one that would make a single part.
 */
export function planChunks(o: {
  duration: number;
  videoSeconds?: number;
  segmentSeconds: number;
  chunkSeconds: number;
  minInputSeconds: number;
}): ChunkSpan[] {
  const { segmentSeconds } = o;
  if (!(o.chunkSeconds > 0) || !(segmentSeconds > 0) || !(o.duration > o.minInputSeconds)) return [];
  // Every part holds video frames: none is planned past the video's end, which the last part holds.
  const duration = o.videoSeconds ?? o.duration;
  if (!(duration > 0)) return [];
  const segments = Math.max(1, Math.round(o.chunkSeconds / segmentSeconds));
  const spans: ChunkSpan[] = [];
  for (let first = 0; first * segmentSeconds < duration; first += segments) {
    const start = roundTime(first * segmentSeconds);
    const end = Math.min(duration, roundTime((first + segments) * segmentSeconds));
    spans.push({ index: spans.length, start, end });
  }
  const last = spans.at(-1)!;
  if (spans.length > 1 && last.end - last.start < MIN_LAST_CHUNK_SECONDS) {
    spans.pop();
    spans.at(-1)!.end = last.end;
  }
  return spans.length > 1 ? spans : [];
}

/** Times as FFmpeg is given them: microseconds, so that 3 × 0.1 is 0.3. */
function roundTime(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}

/**
 * Whether a chunk is the input's last: it reads to the end of the input, and holds the last frame to the
 * audio's end when the plan says so (see ChunkSpan).
 */
export function isLastChunk(
  chunk: ChunkSpan,
  media: MediaInfo,
  plan: Pick<EncodePlan, 'frameRateLimit'>,
): boolean {
  return chunk.end >= videoSpan(media, plan) - 1e-6;
}

/**
 * Seconds of the video's timeline the chunks divide: from its first frame (`videoOrigin`) to the video's end
 * when the stream states it (the audio may outlast it: its last frame is then held), else the input's end.
 */
export function videoSpan(media: MediaInfo, plan: Pick<EncodePlan, 'frameRateLimit'>): number {
  const { video } = media;
  const end =
    video.duration === undefined
      ? media.duration
      : Math.min(media.duration, (video.startTime ?? media.startTime) - media.startTime + video.duration);
  return roundTime(Math.max(0, end - videoOrigin(media, plan)));
}

/**
 * Where the video's first frame is on the timeline FFmpeg gives the input (the file's start at 0), as the
 * whole run's encoder sees it: its forced keyframes count from that frame. After a frame rate limit, the
 * first frame sits on the limit's grid.
 */
export function videoOrigin(media: MediaInfo, plan: Pick<EncodePlan, 'frameRateLimit'>): number {
  const origin = Math.max(0, (media.video.startTime ?? media.startTime) - media.startTime);
  return plan.frameRateLimit ? Math.round(origin * plan.frameRateLimit) / plan.frameRateLimit : origin;
}

/**
 * Containers whose index takes a seek to the keyframe at or before a time: MP4/MOV (sample table) and
 * Matroska/WebM (cues). Elsewhere (MPEG-TS, AVI…) FFmpeg seeks by bytes and may land past a chunk's start.
 */
const SEEKABLE_FORMATS = /\b(mov|mp4|matroska|webm)\b/;

/** Whether a container seeks by an index, so a part of it is read in byte ranges (see SEEKABLE_FORMATS). */
export function hasSeekIndex(formatName: string): boolean {
  return SEEKABLE_FORMATS.test(formatName);
}

export type SplitVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Whether an input may be encoded in parts that join into the same package as one run makes. Deinterlacing,
 * a frame rate limit and HDR tone mapping work frame by frame or on neighbouring frames, which each part
 * decodes before its start: they may. Keyframes by count (AV1) land on the segment grid only when a segment
 * holds a whole number of frames of a constant rate. A last frame held for audio that outlasts the video is
 * held by the last part, which reads to the end; a container without an index cannot be seeked exactly.
 */
export function canSplit(plan: EncodePlan, media: MediaInfo): SplitVerdict {
  if (!SEEKABLE_FORMATS.test(media.formatName)) {
    return {
      ok: false,
      reason: `the container (${media.formatName}) has no index to seek each part's start by`,
    };
  }
  if (plan.keyframesByCount) {
    const fps = plan.frameRateLimit ?? media.video.frameRate;
    const perSegment = fps * plan.segmentDuration;
    if (plan.keepFrameTiming || Math.abs(perSegment - Math.round(perSegment)) > 1e-3) {
      return {
        ok: false,
        reason: `a codec of the plan places keyframes by count, and a segment holds ${perSegment.toFixed(2)} frames`,
      };
    }
  }
  return { ok: true };
}
