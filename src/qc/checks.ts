import type { MediaSegment } from '../manifests/mpd.js';
import type { QcCheck } from '../domain/qc-report.js';

/** One stream as a manifest or playlist describes it; URLs are keys of the package. */
export interface StreamView {
  format: 'dash' | 'hls';
  id: string;
  /** `other`: a DASH image track, an HLS I-frame playlist. */
  kind: 'video' | 'audio' | 'text' | 'other';
  width?: number;
  height?: number;
  /** The video codec as the manifest states it (`h264`, `av1`, `vp9`, `hevc`, or the tag it gave). */
  codec?: string;
  init?: string;
  segments: MediaSegment[];
}

const codecTags: Record<string, string> = {
  avc1: 'h264',
  avc3: 'h264',
  av01: 'av1',
  vp09: 'vp9',
  hvc1: 'hevc',
  hev1: 'hevc',
};

/** The video codec of an RFC 6381 list (`avc1.64001f,mp4a.40.2` → `h264`), by its sample entry's tag. */
export function videoCodecOf(codecs: string | undefined): string | undefined {
  for (const entry of codecs?.split(',') ?? []) {
    const tag = entry.trim().split('.')[0]!;
    if (codecTags[tag]) return codecTags[tag];
  }
  return undefined;
}

export interface Expectations {
  renditions: { name: string; codec: string; width: number; height: number }[];
  audio: boolean;
  /**
   * Every audio track planned, by its directory in the package, with how long its source stream lasts (as
   * `source.audio` says for the first); absent: one track when `audio`.
   */
  audioTracks?: { name: string; duration?: number }[];
  /** Text tracks planned (absent: not checked). */
  textTracks?: number;
  formats: ('dash' | 'hls')[];
  /** Target segment duration, seconds. */
  segmentDuration: number;
  /** Frame rate of the output video. */
  frameRate: number;
  /**
   * How long the packaged streams should last, from the source, with its last and (VFR kept) longest frame's
   * durations, which loosen the checks (docs/design-notes.md, "QC of durations").
   */
  source: { video: number; audio?: number; lastVideoFrame?: number; longestVideoFrame?: number };
  /** Sample rate of the output audio. */
  audioSampleRate: number;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const s3 = (v: number) => `${v.toFixed(3)} s`;

function listSome(items: string[], max = 5): string {
  return items.length > max
    ? `${items.slice(0, max).join(', ')} and ${items.length - max} more`
    : items.join(', ');
}

/**
 * Every format asked for lists the planned video renditions (by codec and size) and the audio when there is
 * one.
 */
export function checkRepresentations(streams: StreamView[], expect: Expectations): QcCheck {
  const problems: string[] = [];
  // H.264 by size alone, as before other codecs; the others with their codec's name.
  const label = (codec: string | undefined, width?: number, height?: number) =>
    `${codec === 'h264' ? '' : `${codec ?? 'unknown codec'} `}${width}x${height}`;
  const wanted = expect.renditions.map((r) => label(r.codec, r.width, r.height)).sort();
  for (const format of expect.formats) {
    const own = streams.filter((s) => s.format === format);
    const videos = own
      .filter((s) => s.kind === 'video')
      .map((s) => label(s.codec, s.width, s.height))
      .sort();
    if (videos.join() !== wanted.join()) {
      problems.push(`${format} lists video ${videos.join(', ') || 'none'}, planned ${wanted.join(', ')}`);
    }
    const audios = own.filter((s) => s.kind === 'audio').length;
    const planned = audioCount(expect);
    if (audios !== planned) {
      problems.push(`${format} lists ${plural(audios, 'audio stream')}, planned ${planned}`);
    }
    if (expect.textTracks !== undefined) {
      const texts = own.filter((s) => s.kind === 'text');
      if (texts.length !== expect.textTracks)
        problems.push(`${format} lists ${plural(texts.length, 'text track')}, planned ${expect.textTracks}`);
      // Cues are clipped to the video: a text track ends within the video's last segment.
      for (const t of texts) {
        const end = t.segments.reduce((e, s) => Math.max(e, s.start + s.duration), 0);
        if (end > expect.source.video + expect.segmentDuration + 0.001)
          problems.push(
            `${format} text ${t.id} lasts ${s3(end)}, past the video's ${s3(expect.source.video)}`,
          );
      }
    }
  }
  for (const format of ['dash', 'hls'] as const) {
    if (!expect.formats.includes(format) && streams.some((s) => s.format === format))
      problems.push(`${format} was not asked for but is present`);
  }
  return problems.length
    ? { name: 'representations', passed: false, detail: problems.join('; ') }
    : {
        name: 'representations',
        passed: true,
        detail: `${expect.formats.join(' and ')}: ${plural(wanted.length, 'video rendition')}${audioCount(expect) > 1 ? ` and ${audioCount(expect)} audio tracks` : expect.audio ? ' and audio' : ''} as planned`,
      };
}

function audioCount(expect: Expectations): number {
  return expect.audioTracks?.length ?? (expect.audio ? 1 : 0);
}

/** The planned track a packaged audio stream is, by the directory of its segments. */
function audioTrackOf(stream: StreamView, expect: Expectations) {
  const dir = (stream.init ?? stream.segments[0]?.url ?? stream.id).split('/').at(-2);
  return expect.audioTracks?.find((t) => t.name === dir);
}

/** Every file a manifest or playlist points at is in the package and not empty. */
export function checkSegmentsExist(referenced: Iterable<string>, sizes: Map<string, number>): QcCheck {
  const unique = [...new Set(referenced)];
  const outside = unique.filter((k) => k.startsWith('!')).map((k) => k.slice(1));
  const missing = unique.filter((k) => !k.startsWith('!') && !sizes.has(k));
  const empty = unique.filter((k) => sizes.get(k) === 0);
  const problems: string[] = [];
  if (missing.length) problems.push(`missing: ${listSome(missing)}`);
  if (empty.length) problems.push(`empty: ${listSome(empty)}`);
  if (outside.length) problems.push(`pointing outside the package: ${listSome(outside)}`);
  return problems.length
    ? { name: 'segments_exist', passed: false, detail: problems.join('; ') }
    : {
        name: 'segments_exist',
        passed: true,
        detail: `all ${plural(unique.length, 'referenced file')} present`,
      };
}

/**
 * Video streams of one format, every codec's, start their segments at the same instants (within half a
 * frame): a player switches rungs within a codec at any segment, and codecs share one timeline.
 */
export function checkAlignment(streams: StreamView[], frameRate: number): QcCheck {
  const tolerance = 0.5 / frameRate;
  const problems: string[] = [];
  let compared = 0;
  for (const format of ['dash', 'hls'] as const) {
    const videos = streams.filter((s) => s.format === format && s.kind === 'video');
    const [first, ...others] = videos;
    if (!first) continue;
    for (const other of others) {
      compared++;
      if (other.segments.length !== first.segments.length) {
        problems.push(
          `${format}: ${other.id} has ${plural(other.segments.length, 'segment')}, ${first.id} has ${first.segments.length}`,
        );
        continue;
      }
      const at = other.segments.findIndex(
        (seg, i) => Math.abs(seg.start - first.segments[i]!.start) > tolerance,
      );
      if (at >= 0) {
        problems.push(
          `${format}: segment ${at + 1} starts at ${s3(other.segments[at]!.start)} in ${other.id}, ${s3(first.segments[at]!.start)} in ${first.id}`,
        );
      }
    }
  }
  return problems.length
    ? { name: 'segment_alignment', passed: false, detail: problems.join('; ') }
    : {
        name: 'segment_alignment',
        passed: true,
        detail: compared ? 'segment boundaries line up across video renditions' : 'one video rendition',
      };
}

/**
 * Tolerance of a segment's duration: keyframes are forced at the first frame at or after each boundary, and
 * audio is cut on whole codec frames, so a segment may miss the target by up to a couple of frames.
 */
export function segmentTolerance(target: number, frameRate: number): number {
  return Math.max(0.1 * target, 2 / frameRate);
}

/** Every segment but the last lasts the target (within tolerance); the last is not longer. */
export function checkSegmentDurations(streams: StreamView[], expect: Expectations): QcCheck {
  const target = expect.segmentDuration;
  const tolerance = segmentTolerance(target, expect.frameRate);
  // A video frame shown for longer than that (a screen recording's pause) may straddle a boundary: the
  // segments on either side then miss the target by up to the pause.
  const pause = expect.source.longestVideoFrame ?? 0;
  const videoTolerance = Math.max(tolerance, pause + 1 / expect.frameRate);
  const problems: string[] = [];
  for (const stream of streams) {
    if (stream.kind === 'other' || stream.kind === 'text') continue;
    const allowed = stream.kind === 'video' ? videoTolerance : tolerance;
    const segs = stream.segments;
    if (segs.length === 0) {
      problems.push(`${stream.format} ${stream.id} has no segments`);
      continue;
    }
    const bad = segs.findIndex((seg, i) =>
      i === segs.length - 1
        ? !(seg.duration > 0 && seg.duration <= target + allowed)
        : Math.abs(seg.duration - target) > allowed,
    );
    if (bad >= 0) {
      problems.push(`${stream.format} ${stream.id} segment ${bad + 1} lasts ${s3(segs[bad]!.duration)}`);
    }
  }
  return problems.length
    ? {
        name: 'segment_durations',
        passed: false,
        detail: `target ${s3(target)} ± ${s3(tolerance)}${videoTolerance > tolerance ? ` (video ± ${s3(videoTolerance)}: the source pauses)` : ''}: ${listSome(problems, 4)}`,
      }
    : {
        name: 'segment_durations',
        passed: true,
        detail: `every segment within ${s3(tolerance)} of ${s3(target)} (the last not longer)`,
      };
}

export function streamDuration(stream: StreamView): number {
  const segs = stream.segments;
  if (!segs.length) return 0;
  const last = segs[segs.length - 1]!;
  return last.start + last.duration - segs[0]!.start;
}

/**
 * Every video rendition and the audio last as long as in the source, within one frame of their own kind (the
 * source's held last frame when longer), so also as long as each other, give or take the source's own gap.
 */
export function checkAvDurations(streams: StreamView[], expect: Expectations): QcCheck {
  // DASH timelines are exact; HLS EXTINF values are rounded to milliseconds.
  const format = streams.some((s) => s.format === 'dash') ? 'dash' : 'hls';
  const own = streams.filter((s) => s.format === format);
  const videos = own.filter((s) => s.kind === 'video');
  const video = videos[0];
  const audio = own.find((s) => s.kind === 'audio');
  const rounding =
    format === 'hls' ? 0.0005 * Math.max(video?.segments.length ?? 0, audio?.segments.length ?? 0) : 0;
  const videoTol = Math.max(1 / expect.frameRate, expect.source.lastVideoFrame ?? 0) + rounding + 0.001;
  const audioTol = Math.max(1 / expect.frameRate, 1024 / expect.audioSampleRate) + rounding + 0.001;
  const problems: string[] = [];
  const found: string[] = [];
  if (video) {
    const v = streamDuration(video);
    found.push(`video ${s3(v)} (source ${s3(expect.source.video)} ± ${s3(videoTol)})`);
    for (const other of videos) {
      const d = streamDuration(other);
      if (Math.abs(d - expect.source.video) > videoTol)
        problems.push(`video ${other.id} lasts ${s3(d)}, the source's video ${s3(expect.source.video)}`);
    }
    for (const track of own.filter((s) => s.kind === 'audio')) {
      const planned = audioTrackOf(track, expect);
      const source = planned ? planned.duration : expect.source.audio;
      if (source === undefined) continue;
      const name = planned && audioCount(expect) > 1 ? `audio ${planned.name}` : 'audio';
      const a = streamDuration(track);
      found.push(`${name} ${s3(a)} (source ${s3(source)} ± ${s3(audioTol)})`);
      if (Math.abs(a - source) > audioTol)
        problems.push(`${name} lasts ${s3(a)}, the source's ${name} ${s3(source)}`);
      const drift = a - v - (source - expect.source.video);
      if (Math.abs(drift) > videoTol + audioTol)
        problems.push(
          `${name} and video differ by ${s3(a - v)}, ${s3(Math.abs(drift))} more than in the source`,
        );
    }
  }
  return problems.length
    ? { name: 'av_durations', passed: false, detail: problems.join('; ') }
    : { name: 'av_durations', passed: true, detail: found.join(', ') || 'no streams to compare' };
}
