import type { Logger } from 'pino';
import type { ProbePacket } from '../pipeline/probe.js';
import { runProcess } from '../process/run-process.js';

interface ProbePackets {
  packets?: ProbePacket[];
}

export interface StreamSpan {
  /** Seconds from the first sample's start to the last sample's end. */
  duration: number;
  /** When the stream's last sample ends, seconds on the source's timeline. */
  end: number;
  /** How long the last sample is shown (a variable frame rate source may hold its last frame for long). */
  lastSample: number;
  /**
   * The longest gap between two samples' starts (the last's duration aside): a VFR pause moves any segment
   * boundary inside it. Of a long source only the ends are read, unless asked for the whole.
   */
  longestSample: number;
}

export interface SourceSpans {
  video: StreamSpan;
  audio?: StreamSpan;
  /** Every audio stream asked for by `indexes.audioStreams`, by stream index. */
  audioStreams?: Record<number, StreamSpan>;
  /**
   * Where the encode's output starts on the source's timeline: the earliest sample shown of any stream
   * (FFmpeg repeats the first frame until the video starts, so the packaged video runs from here to its end).
   */
  start: number;
}

/** The source's streams to measure: the video, the main audio and every other audio track packaged. */
export interface SpanIndexes {
  video: number;
  audio?: number;
  audioStreams?: number[];
}

/** Seconds read at each end of the source: enough for a whole GOP, whatever the interleaving. */
const EDGE_SECONDS = 10;
/** Sources up to this long are read whole, not by their ends. */
export const WHOLE_SOURCE_SECONDS = 2 * EDGE_SECONDS;
/**
 * Seconds of packets the pipeline's probe lists for the check (`ProbeOptions.packetSeconds`): more than
 * `WHOLE_SOURCE_SECONDS`, so that for a source read whole they are all its packets.
 */
export const PROBED_PACKET_SECONDS = WHOLE_SOURCE_SECONDS + 10;

/**
 * How long the given streams last from their packet timestamps (what a player shows, which duration fields do
 * not always say), reading only the file's first and last seconds.
 */
export async function sourceSpans(
  ffprobe: string,
  inputPath: string,
  indexes: SpanIndexes,
  options: {
    logger?: Logger;
    signal?: AbortSignal;
    duration?: number;
    startTime?: number;
    /** The programs' temporary directory (see RunProcessOptions.tempDir). */
    tempDir?: string;
    /** Read every packet, however long the source (to know its longest sample). */
    whole?: boolean;
  } = {},
): Promise<SourceSpans> {
  const d = options.duration ?? 0;
  // Seek positions are timestamps: the tail starts at the first timestamp plus the duration, less the edge.
  const tail = (options.startTime ?? 0) + d - EDGE_SECONDS;
  const intervals = d > WHOLE_SOURCE_SECONDS ? `%+${EDGE_SECONDS},${tail.toFixed(3)}%` : undefined;
  // The whole of a long source: its video's timestamps alone, streamed (the JSON of every packet of an hour's
  // recording is more than a program's output is allowed to be).
  const longest =
    options.whole && intervals ? videoLongestInterval(ffprobe, inputPath, indexes.video, options) : undefined;
  longest?.catch(() => undefined);
  const { stdout } = await runProcess(
    ffprobe,
    [
      '-v',
      'error',
      // A local file already probed by the pipeline: still, no other protocol may be opened.
      '-protocol_whitelist',
      'file',
      ...(intervals ? ['-read_intervals', intervals] : []),
      '-print_format',
      'json',
      '-show_entries',
      'packet=stream_index,pts_time,duration_time,flags',
      `file:${inputPath}`,
    ],
    { logger: options.logger, signal: options.signal, tempDir: options.tempDir, timeoutMs: 120_000 },
  );
  const spans = spansFrom(JSON.parse(stdout) as ProbePackets, indexes, options.startTime, !!intervals);
  if (longest) spans.video.longestSample = await longest;
  return spans;
}

/** The longest time between consecutive starts, in presentation order (0 for fewer than two). */
function longestInterval(starts: number[]): number {
  const sorted = [...starts].sort((a, b) => a - b);
  let longest = 0;
  for (let i = 1; i < sorted.length; i++) longest = Math.max(longest, sorted[i]! - sorted[i - 1]!);
  return longest;
}

/** `longestInterval` of one stream's shown packets, read line by line. */
async function videoLongestInterval(
  ffprobe: string,
  inputPath: string,
  index: number,
  options: { logger?: Logger; signal?: AbortSignal; tempDir?: string },
): Promise<number> {
  const starts: number[] = [];
  await runProcess(
    ffprobe,
    [
      ...['-v', 'error', '-protocol_whitelist', 'file', '-select_streams', String(index)],
      ...['-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', `file:${inputPath}`],
    ],
    {
      logger: options.logger,
      signal: options.signal,
      timeoutMs: 600_000,
      tempDir: options.tempDir,
      onStdoutLine: (line) => {
        const [pts, flags] = line.split(',');
        const t = Number(pts);
        if (pts && Number.isFinite(t) && !flags?.includes('D')) starts.push(t);
      },
    },
  );
  return longestInterval(starts);
}

/**
 * The streams' spans from the samples a player shows: no discarded packet, nothing before `startTime` (where
 * an MP4's edit list starts: a trimmed MP4 keeps frames before its cut at negative times).
 */
export function spansFrom(
  data: ProbePackets,
  indexes: SpanIndexes,
  startTime = -Infinity,
  partial = false,
): SourceSpans {
  const shown: { index: number; start: number; pts: number; end: number; dur: number }[] = [];
  // A raw elementary stream has no timestamps; its demuxer lays the frames end to end, and so do we.
  const untimedClock = new Map<number, number>();
  for (const p of data.packets ?? []) {
    if (p.flags?.includes('D')) continue;
    const dur = Number(p.duration_time) || 0;
    let pts = Number(p.pts_time);
    if (!Number.isFinite(pts)) {
      if (!dur) continue;
      pts = untimedClock.get(p.stream_index) ?? (Number.isFinite(startTime) ? startTime : 0);
      untimedClock.set(p.stream_index, pts + dur);
    }
    const end = pts + dur;
    // A sample that ends where the input starts is not shown.
    if (pts < startTime && end <= startTime) continue;
    shown.push({ index: p.stream_index, start: Math.max(pts, startTime), pts, end, dur });
  }
  const of = (index: number): StreamSpan => {
    let start = Infinity;
    let end = -Infinity;
    let lastPts = -Infinity;
    let lastSample = 0;
    const starts: number[] = [];
    for (const p of shown) {
      if (p.index !== index) continue;
      start = Math.min(start, p.start);
      end = Math.max(end, p.end);
      starts.push(p.start);
      if (p.pts > lastPts) {
        lastPts = p.pts;
        lastSample = p.dur;
      }
    }
    // Of a source read by its ends, the middle is unknown (see `longestInterval`).
    const longestSample = partial ? 0 : longestInterval(starts);
    return Number.isFinite(start)
      ? { duration: end - start, end, lastSample, longestSample }
      : { duration: 0, end: 0, lastSample: 0, longestSample: 0 };
  };
  const video = of(indexes.video);
  let earliest = Infinity;
  for (const p of shown) earliest = Math.min(earliest, p.start);
  return {
    video,
    ...(indexes.audio !== undefined ? { audio: of(indexes.audio) } : {}),
    ...(indexes.audioStreams?.length
      ? { audioStreams: Object.fromEntries(indexes.audioStreams.map((i) => [i, of(i)])) }
      : {}),
    start: Number.isFinite(earliest) ? earliest : video.end - video.duration,
  };
}
