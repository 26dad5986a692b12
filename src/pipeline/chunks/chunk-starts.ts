import { stat } from 'node:fs/promises';
import { runProcess } from '../../process/run-process.js';
import type { StageContext } from '../context.js';
import { inputGuardArgs } from '../input-formats.js';
import type { MediaInfo } from '../media-info.js';
import type { EncodePlan } from '../plan.js';
import { processFailure } from '../process-failure.js';
import { earliestFrom, LOOK_AHEAD_SECONDS, SAME_TIME } from './first-frame.js';
import { hasSeekIndex, PREROLL_SECONDS, timelineStart, videoOrigin, type ChunkSpan } from './plan-chunks.js';

/**
 * How far before a chunk's start its packets are read: past the reordering of B-frames (a keyframe's decoding
 * time precedes its presentation by a few frames), so the keyframe at or before the start is among them.
 */
const LOOK_BEHIND_SECONDS = 0.5;

interface Packet {
  pts: number;
  /** Decoding time, when the container gives one. */
  dts?: number;
  pos: number;
  key: boolean;
}

/**
 * An input whose parts would not join into the package one run makes (see timestampJump): the task is
 * encoded in one run instead.
 */
export class UnsplittableInput extends Error {
  override name = 'UnsplittableInput';
}

/**
 * FFmpeg's `dts_delta_threshold`: a jump of an MPEG-TS's decoding times forward by more than this, or any step
 * back, is a discontinuity one run's FFmpeg corrects; the parts, which keep the timestamps (`-copyts`), cannot.
 */
const TS_JUMP_SECONDS = 10;

/** Where the decoding times of packets read in file order jump (see TS_JUMP_SECONDS); undefined when nowhere. */
export function timestampJump(packets: Packet[]): { from: number; to: number } | undefined {
  let last: number | undefined;
  for (const p of packets) {
    if (p.dts === undefined) continue;
    if (last !== undefined && (p.dts < last - SAME_TIME || p.dts - last > TS_JUMP_SECONDS)) {
      return { from: last, to: p.dts };
    }
    last = p.dts;
  }
  return undefined;
}

/**
 * The chunks with what the input's index says about their starts (ChunkSpan's `keyframe`, `firstFrame` and
 * `bytes`), from one FFprobe run over a local input that reads the packets around every start (no decoding):
 * each chunk job then seeks straight to its keyframe with nothing to probe, and the stitch needs no probe of
 * the chunks' files. A chunk the packets tell nothing about (its first frame further than the look-ahead: a
 * still picture) is left as it was; the chunk job probes it itself. The chunks unchanged when the container
 * gives no positions. A container without a seek index (MPEG-TS) has its video packets read whole instead (a
 * demux, no decoding): FFmpeg's seek there lands near a time, not on the keyframe before it, so the packets
 * around a start may miss that keyframe; each chunk also gets its `prerollKeyframe`.
 */
export async function readChunkStarts(o: {
  inputPath: string;
  media: MediaInfo;
  plan: Pick<EncodePlan, 'frameRateLimit'>;
  chunks: ChunkSpan[];
  ctx: StageContext;
}): Promise<ChunkSpan[]> {
  const { media, ctx } = o;
  const origin = videoOrigin(media, o.plan);
  // FFprobe's times are the container's; the encode shifts them so that its timeline starts at 0.
  const shift = timelineStart(media);
  const indexed = hasSeekIndex(media.formatName);
  const container = (t: number) => (Math.max(0, t) + shift).toFixed(6);
  const intervals = o.chunks.map((c) => {
    const at = origin + c.start;
    return `${container(at - LOOK_BEHIND_SECONDS)}%${container(at + LOOK_AHEAD_SECONDS)}`;
  });
  const packets = await readVideoPackets({
    input: [...inputGuardArgs(), '-i', `file:${o.inputPath}`],
    media,
    ctx,
    // The whole file without an index: as long as it takes, while it reads on.
    ...(indexed ? { intervals: intervals.join(','), quick: true } : {}),
  });
  const jump = indexed ? undefined : timestampJump(packets);
  if (jump) {
    throw new UnsplittableInput(
      `the video's timestamps jump from ${jump.from.toFixed(3)} s to ${jump.to.toFixed(3)} s (a discontinuity one run corrects)`,
    );
  }
  const size = (await stat(o.inputPath)).size;
  return annotateChunks(o.chunks, packets, origin, size, indexed ? undefined : PREROLL_SECONDS);
}

/**
 * A chunk's `keyframe`, `prerollKeyframe` and `firstFrame`, as readChunkStarts gives them, for a chunk job
 * whose input has no seek index and whose chunk came without them: the packets from the file's start (no seek,
 * which may land past a keyframe there) to the look-ahead past the chunk's start. The chunk unchanged when none is found.
 */
export async function readStartFromTheTop(o: {
  /** FFmpeg's input options through `-i`, as the chunk's encode opens it. */
  input: string[];
  media: MediaInfo;
  plan: Pick<EncodePlan, 'frameRateLimit'>;
  chunk: ChunkSpan;
  ctx: StageContext;
}): Promise<ChunkSpan> {
  const { media, ctx } = o;
  const origin = videoOrigin(media, o.plan);
  const shift = timelineStart(media);
  const until = (origin + o.chunk.start + LOOK_AHEAD_SECONDS + shift).toFixed(6);
  try {
    const packets = await readVideoPackets({ input: o.input, media, intervals: `%${until}`, ctx });
    const [read] = annotateChunks([o.chunk], packets, origin, 0, PREROLL_SECONDS);
    // The bytes to the next chunk's keyframe are not known here.
    const { bytes: _, ...chunk } = read!;
    return read!.keyframe === undefined ? o.chunk : chunk;
  } catch (err) {
    throw processFailure(err, 'encode_failed', 'FFprobe could not read a chunk of the input', []);
  }
}

/**
 * The video packets FFprobe reads over `intervals` (`-read_intervals`; the whole file when not given), on the
 * chunks' timeline (see timelineStart): a demux, no decoding. `quick`: a few packets around each start, whose
 * whole read the idle limit bounds.
 */
async function readVideoPackets(o: {
  /** FFmpeg's input options through `-i`. */
  input: string[];
  media: MediaInfo;
  intervals?: string;
  quick?: boolean;
  ctx: StageContext;
}): Promise<Packet[]> {
  const { ctx } = o;
  const { stdout } = await runProcess(
    ctx.tools.ffprobe,
    [
      ...['-v', 'error', ...o.input, '-select_streams', String(o.media.video.index)],
      ...(o.intervals ? ['-read_intervals', o.intervals] : []),
      ...['-show_entries', 'packet=pts_time,dts_time,pos,flags', '-of', 'csv=p=0'],
    ],
    {
      logger: ctx.logger,
      signal: ctx.signal,
      ...(o.quick
        ? { timeoutMs: ctx.idleTimeoutMs }
        : { idleTimeoutMs: ctx.idleTimeoutMs, timeoutMs: ctx.maxRuntimeMs }),
      tempDir: ctx.tempDir,
    },
  );
  return parsePackets(stdout, timelineStart(o.media));
}

function parsePackets(csv: string, shift: number): Packet[] {
  const packets: Packet[] = [];
  for (const line of csv.split('\n')) {
    // FFprobe's order, whatever the order asked: pts_time, dts_time, pos, flags.
    const [pts, dts, pos, flags] = line.trim().split(',');
    const time = Number.parseFloat(pts ?? '');
    // A packet without a time or a position (N/A) tells nothing here.
    if (!Number.isFinite(time) || !/^\d+$/.test(pos ?? '')) continue;
    const decoded = Number.parseFloat(dts ?? '');
    packets.push({
      pts: time - shift,
      ...(Number.isFinite(decoded) ? { dts: decoded - shift } : {}),
      pos: Number(pos),
      key: (flags ?? '').includes('K'),
    });
  }
  return packets;
}

/**
 * Each chunk's keyframe (the latest at or before its start), first frame (the earliest at or after its start,
 * within the look-ahead) and bytes (from its keyframe to the next chunk's), from the packets read around the
 * starts; a chunk without a keyframe among them is left without all three. With `preroll` (the packets of the
 * whole file), also the latest keyframe at or before that long before the start, where there is one.
 */
export function annotateChunks(
  chunks: ChunkSpan[],
  packets: Packet[],
  origin: number,
  fileSize: number,
  preroll?: number,
): ChunkSpan[] {
  // Sorted by time once, searched by halves: a whole film's packets (MPEG-TS) for hundreds of chunks.
  const keyframes = packets.filter((p) => p.key).sort((a, b) => a.pts - b.pts);
  const times = packets.map((p) => p.pts).sort((a, b) => a - b);
  const latestKey = (at: number) => {
    const i = firstIndex(keyframes, (p) => p.pts > at + SAME_TIME) - 1;
    // The first in the file among keyframes of the same time.
    return i < 0 ? undefined : keyframes[firstIndex(keyframes, (p) => p.pts >= keyframes[i]!.pts)];
  };
  const found = chunks.map((c) => {
    const at = origin + c.start;
    const key = latestKey(at);
    const until = Math.min(at + LOOK_AHEAD_SECONDS, origin + c.end - SAME_TIME);
    const near = times.slice(
      firstIndex(times, (t) => t >= at - SAME_TIME),
      firstIndex(times, (t) => t > until),
    );
    const first = earliestFrom(near, at);
    const before = preroll === undefined ? undefined : latestKey(at - preroll);
    return { key, first, before };
  });
  return chunks.map((chunk, i) => {
    const { key, first, before } = found[i]!;
    if (!key) return chunk;
    const next = found.slice(i + 1).find((f) => f.key)?.key?.pos ?? fileSize;
    return {
      ...chunk,
      keyframe: key.pts,
      ...(first !== undefined ? { firstFrame: first } : {}),
      bytes: Math.max(0, next - key.pos),
      ...(before ? { prerollKeyframe: before.pts } : {}),
    };
  });
}

/** The first index of sorted `items` where `after` holds (it holds from there on); their length if nowhere. */
function firstIndex<T>(items: T[], after: (item: T) => boolean): number {
  let [lo, hi] = [0, items.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (after(items[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The order in which to queue a split's chunks: the costliest first (by the bytes each spans), the earlier
 * chunk first among equals. Workers take jobs in queue order, so the long jobs start at once and the short
 * ones fill in at the end, instead of one long chunk starting when the others are done (the
 * longest-processing-time-first rule). The chunks' own order when any lacks its bytes.
 */
export function costliestFirst(chunks: ChunkSpan[]): ChunkSpan[] {
  if (!chunks.every((c) => c.bytes !== undefined)) return chunks;
  return [...chunks].sort((a, b) => b.bytes! - a.bytes! || a.index - b.index);
}

/**
 * The chunks as their jobs are queued (readChunkStarts, then costliestFirst); as planned, in order, when the
 * index cannot be read: each chunk then probes its own start. Undefined when the packets show that the input
 * cannot be split after all (UnsplittableInput): it is encoded in one run.
 */
export async function chunksInQueueOrder(
  o: Parameters<typeof readChunkStarts>[0],
): Promise<ChunkSpan[] | undefined> {
  const { ctx } = o;
  let read: ChunkSpan[];
  try {
    read = await readChunkStarts(o);
  } catch (err) {
    if (ctx.signal?.aborted) throw err;
    if (err instanceof UnsplittableInput) {
      ctx.logger.info({ reason: err.message }, 'encoded in one run after all');
      return undefined;
    }
    ctx.logger.warn({ err }, "could not read the chunks' starts from the index: each chunk probes its own");
    read = o.chunks;
  }
  const order = costliestFirst(read);
  ctx.logger.info(
    { order: order.map((c) => c.index), bytes: read.map((c) => c.bytes) },
    'chunks queued costliest first',
  );
  return order;
}
