import type { Logger } from 'pino';
import { TaskFailure } from '../domain/failures.js';
import { ProcessError, runProcess } from '../process/run-process.js';
import { inputGuardArgs, refusedFormat } from './input-formats.js';
import type { AudioStreamInfo, MediaInfo, SubtitleStreamInfo, VideoStreamInfo } from './media-info.js';

interface FfprobeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  sample_aspect_ratio?: string;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  pix_fmt?: string;
  field_order?: string;
  color_transfer?: string;
  time_base?: string;
  duration?: string;
  start_time?: string;
  channels?: number;
  sample_rate?: string;
  profile?: string;
  bit_rate?: string;
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
  disposition?: {
    attached_pic?: number;
    default?: number;
    forced?: number;
    visual_impaired?: number;
    hearing_impaired?: number;
  };
}

/** One packet as `-show_entries packet=stream_index,pts_time,duration_time,flags` lists it. */
export interface ProbePacket {
  stream_index: number;
  pts_time?: string;
  duration_time?: string;
  /** `K` keyframe, `D` discarded (decoded only, never shown: the frames before an MP4 edit list's start). */
  flags?: string;
}

interface FfprobeOutput {
  streams?: FfprobeStream[];
  packets?: ProbePacket[];
  format?: { duration?: string; size?: string; format_name?: string; start_time?: string };
}

export interface ProbeOptions {
  ffprobe: string;
  /** FFmpeg, which measures the duration of an input that does not state it (default: `ffmpeg` on the PATH). */
  ffmpeg?: string;
  logger?: Logger;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** The programs' temporary directory (see RunProcessOptions.tempDir). */
  tempDir?: string;
  /**
   * Also list the packets of the first this many seconds (the quality check's look at the source's ends, which
   * for a short input is the whole file): one ffprobe run instead of two.
   */
  packetSeconds?: number;
  /**
   * Start ffprobe through setpriv, tied to this process (default). The CLI's early probe starts it directly:
   * nothing waits for the setpriv check, and an ffprobe left behind by a killed command ends on its own.
   */
  tiedToParent?: boolean;
}

export interface ProbeResult {
  media: MediaInfo;
  /** The packets of the first `packetSeconds`, when asked for. */
  packets?: ProbePacket[];
}

/** Reads an input with ffprobe and describes it; anything that is not a playable video is a TaskFailure. */
export async function probe(inputPath: string, options: ProbeOptions): Promise<MediaInfo> {
  return (await probeSource(inputPath, options)).media;
}

/** `probe`, and the packets of the input's first `packetSeconds` when asked for. */
export async function probeSource(inputPath: string, options: ProbeOptions): Promise<ProbeResult> {
  const packets = options.packetSeconds
    ? [
        ...['-read_intervals', `%+${options.packetSeconds}`],
        ...['-show_entries', 'packet=stream_index,pts_time,duration_time,flags'],
      ]
    : [];
  let stdout: string;
  try {
    ({ stdout } = await runProcess(
      options.ffprobe,
      [
        '-v',
        'error',
        // The input is a local file handed over by the storage layer: no other protocol may be opened, and
        // no playlist or reference format that would open other files.
        ...inputGuardArgs(),
        '-print_format',
        'json',
        '-show_format',
        '-show_streams',
        ...packets,
        `file:${inputPath}`,
      ],
      {
        logger: options.logger,
        signal: options.signal,
        timeoutMs: options.timeoutMs ?? 60_000,
        tiedToParent: options.tiedToParent,
        tempDir: options.tempDir,
      },
    ));
  } catch (err) {
    if (err instanceof ProcessError && err.kind === 'exit') {
      const refused = refusedFormat(err.stderrTail);
      if (refused) {
        throw new TaskFailure(
          'not_a_video',
          `the input is not a video container this service accepts (FFmpeg reads it as ${refused.split(',')[0]})`,
          { cause: err },
        );
      }
      throw new TaskFailure(
        'not_a_video',
        `the input is not a readable media file (${describeProbeError(err, inputPath)})`,
        { cause: err },
      );
    }
    throw err;
  }
  const output = JSON.parse(stdout) as FfprobeOutput;
  // A browser's recording (MediaRecorder WebM), a live Matroska capture or a raw H.264 stream states no
  // duration: it is measured by reading the file through.
  const chosen = chosenStreams(output);
  const measured = statesDuration(output, chosen)
    ? undefined
    : await measureDuration(inputPath, chosen, options);
  const media = parseProbeOutput(output, measured);
  return options.packetSeconds ? { media, packets: output.packets ?? [] } : { media };
}

/**
 * The last two things ffprobe said (the demuxer's own complaint, e.g. "moov atom not found", comes before
 * the generic "Invalid data found"), without the input path or FFmpeg's `[demuxer @ 0x…]` prefixes.
 */
function describeProbeError(err: ProcessError, inputPath: string): string {
  const lines = err.stderrTail
    .split('\n')
    .map((l) =>
      l
        .trim()
        // The path is removed whole first: a key may itself contain ": ".
        .split(`file:${inputPath}`)
        .join('')
        .split(inputPath)
        .join('')
        .replace(/^\[([\w]+)[\w,]* @ 0x[0-9a-f]+\]\s*/, '')
        .replace(/^:\s*/, ''),
    )
    .filter(Boolean);
  const last = [...new Set(lines.slice(-2))];
  return (last.length ? last.join('; ') : 'ffprobe could not read it').slice(0, 200);
}

/**
 * The streams taken, as FFmpeg would choose: most pixels (no cover picture), most channels, default first,
 * known codecs only (an undecodable second audio track is not the one to fail on).
 */
interface ChosenStreams {
  video?: FfprobeStream;
  audio?: FfprobeStream;
}

function chosenStreams(data: FfprobeOutput): ChosenStreams {
  const streams = (data.streams ?? []).filter(
    (s) => s.codec_name && !['none', 'unknown'].includes(s.codec_name),
  );
  const best = (candidates: FfprobeStream[], score: (s: FfprobeStream) => number) => {
    const total = (s: FfprobeStream) => score(s) + (s.disposition?.default ? DEFAULT_STREAM_BONUS : 0);
    return candidates.reduce<FfprobeStream | undefined>(
      (chosen, s) => (!chosen || total(s) > total(chosen) ? s : chosen),
      undefined,
    );
  };
  return {
    video: best(
      streams.filter((s) => s.codec_type === 'video' && !s.disposition?.attached_pic),
      (s) => (s.width ?? 0) * (s.height ?? 0),
    ),
    audio: best(
      streams.filter((s) => s.codec_type === 'audio'),
      (s) => s.channels ?? 0,
    ),
  };
}

/** What a stream marked default weighs against pixels or channels (FFmpeg's own stream selection uses it). */
const DEFAULT_STREAM_BONUS = 5_000_000;

/** Whether the container or the chosen video stream says how long the input lasts. */
function statesDuration(data: FfprobeOutput, { video }: ChosenStreams): boolean {
  return !!video && !!firstPositive(Number(data.format?.duration), Number(video.duration));
}

/**
 * How long an input that does not say lasts: FFmpeg reads it through, copying the chosen streams into
 * nothing (no decoding), and reports the time it reached. Undefined when that fails or finds nothing.
 */
async function measureDuration(
  inputPath: string,
  { video, audio }: ChosenStreams,
  options: ProbeOptions,
): Promise<number | undefined> {
  if (!video) return undefined;
  try {
    const { stdout } = await runProcess(
      options.ffmpeg ?? 'ffmpeg',
      [
        ...['-hide_banner', '-nostdin', '-v', 'error'],
        ...inputGuardArgs(),
        ...['-i', `file:${inputPath}`],
        ...['-map', `0:${video.index}`, ...(audio ? ['-map', `0:${audio.index}`] : [])],
        ...['-c', 'copy', '-f', 'null', '-progress', 'pipe:1', '-nostats', '-'],
      ],
      {
        logger: options.logger,
        signal: options.signal,
        timeoutMs: options.timeoutMs ?? 300_000,
        tiedToParent: options.tiedToParent,
        tempDir: options.tempDir,
      },
    );
    const times = [...stdout.matchAll(/^out_time_us=(\d+)$/gm)].map((m) => Number(m[1]));
    const seconds = (times.at(-1) ?? 0) / 1e6;
    return seconds > 0 ? seconds : undefined;
  } catch (err) {
    options.signal?.throwIfAborted();
    options.logger?.warn({ err }, 'could not measure the duration of an input that does not state it');
    return undefined;
  }
}

/**
 * Describes the input from ffprobe's report; `measuredDuration` stands in when neither the container nor the
 * video stream states a duration.
 */
export function parseProbeOutput(data: FfprobeOutput, measuredDuration?: number): MediaInfo {
  const streams = data.streams ?? [];
  const chosen = chosenStreams(data);
  const videoStream = chosen.video;
  if (!videoStream) {
    const hasAudio = streams.some((s) => s.codec_type === 'audio');
    const undecodable = streams.some((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
    throw new TaskFailure(
      'not_a_video',
      undecodable
        ? 'the video stream is in a format FFmpeg cannot decode'
        : hasAudio
          ? 'the input has audio but no video stream'
          : 'the input contains no video stream',
    );
  }
  const video = parseVideoStream(videoStream);
  const decodable = (x: FfprobeStream) => !!x.codec_name && !['none', 'unknown'].includes(x.codec_name);
  const audioStreams = streams.filter((s) => s.codec_type === 'audio' && decodable(s)).map(parseAudioStream);
  const audio = chosen.audio && audioStreams.find((a) => a.index === chosen.audio!.index);
  const subtitles = streams.filter((s) => s.codec_type === 'subtitle').map(parseSubtitleStream);
  const duration = firstPositive(
    Number(data.format?.duration),
    Number(videoStream.duration),
    measuredDuration,
  );
  if (!duration)
    throw new TaskFailure('not_a_video', 'the input has no duration: it holds no playable video');
  return {
    duration,
    size: Number(data.format?.size) || undefined,
    startTime: Number(data.format?.start_time) || 0,
    formatName: data.format?.format_name ?? 'unknown',
    video,
    audio,
    audioStreams,
    subtitles,
  };
}

function parseAudioStream(s: FfprobeStream): AudioStreamInfo {
  return {
    index: s.index,
    codec: s.codec_name ?? 'unknown',
    channels: s.channels ?? 2,
    sampleRate: Number(s.sample_rate) || 48000,
    ...(s.profile ? { profile: s.profile } : {}),
    ...(Number(s.bit_rate) > 0 ? { bitRate: Number(s.bit_rate) } : {}),
    ...streamTiming(s),
    ...streamLanguage(s),
    ...streamTitle(s),
    ...(s.disposition?.default ? { isDefault: true } : {}),
    ...(s.disposition?.visual_impaired ? { describesVideo: true } : {}),
  };
}

function parseSubtitleStream(s: FfprobeStream): SubtitleStreamInfo {
  return {
    index: s.index,
    codec: s.codec_name ?? 'unknown',
    ...streamLanguage(s),
    ...streamTitle(s),
    forced: !!s.disposition?.forced,
  };
}

/** The stream's title, trimmed to a label's length; what it may contain is decided where it is used. */
function streamTitle(s: FfprobeStream): { title?: string } {
  // Not MP4's handler name: muxers fill it with their own (`SoundHandler`, `Core Media Audio`).
  const title = s.tags?.title?.trim();
  return title ? { title: title.slice(0, 200) } : {};
}

/**
 * The stream's language when its tag is an ISO 639 code (`eng`, `fr`; `und`: nobody said): a tag is free
 * text that ends up in FFmpeg's arguments and the manifests, so nothing else is taken.
 */
function streamLanguage(s: FfprobeStream): { language?: string } {
  const tag = s.tags?.language?.trim().toLowerCase();
  return tag && /^[a-z]{2,3}$/.test(tag) && tag !== 'und' ? { language: tag } : {};
}

function parseVideoStream(s: FfprobeStream): VideoStreamInfo {
  const codedWidth = s.width ?? 0;
  const codedHeight = s.height ?? 0;
  if (codedWidth <= 0 || codedHeight <= 0) {
    throw new TaskFailure(
      'not_a_video',
      'the video stream has no picture size (corrupt or unsupported codec)',
    );
  }
  const rotation = normaliseRotation(
    s.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation ?? Number(s.tags?.rotate ?? 0),
  );
  const sar = parseRatio(s.sample_aspect_ratio) || 1;
  // Square the pixels first (the stored width times the SAR), then apply the rotation.
  const squareWidth = codedWidth * sar;
  const [width, height] = rotation % 180 === 0 ? [squareWidth, codedHeight] : [codedHeight, squareWidth];
  const avg = parseRatio(s.avg_frame_rate);
  const real = parseRatio(s.r_frame_rate);
  const frameRate = firstPositive(avg, real) ?? 0;
  return {
    index: s.index,
    codec: s.codec_name ?? 'unknown',
    codedWidth,
    codedHeight,
    width: Math.round(width),
    height: Math.round(height),
    rotation,
    sampleAspectRatio: sar,
    frameRate,
    variableFrameRate: avg > 0 && real > 0 && Math.abs(avg - real) / real > 0.01,
    pixelFormat: s.pix_fmt ?? 'unknown',
    interlaced: !!s.field_order && !['progressive', 'unknown'].includes(s.field_order),
    ...(s.color_transfer ? { colorTransfer: s.color_transfer } : {}),
    ...(s.time_base && /^\d+\/\d+$/.test(s.time_base) ? { timeBase: s.time_base } : {}),
    ...streamTiming(s),
  };
}

/**
 * When a stream starts and how long it lasts, when the container says: MP4 and MOV in the stream, Matroska
 * in a DURATION tag (which FFmpeg and mkvmerge write as the time the stream ends).
 */
function streamTiming(s: FfprobeStream): { duration?: number; startTime?: number } {
  const start = Number(s.start_time);
  const startTime = Number.isFinite(start) && s.start_time !== undefined ? start : undefined;
  const tagged = /^(\d+):(\d\d):(\d\d(?:\.\d+)?)$/.exec(s.tags?.DURATION ?? '');
  const duration =
    Number(s.duration) > 0
      ? Number(s.duration)
      : tagged
        ? Number(tagged[1]) * 3600 + Number(tagged[2]) * 60 + Number(tagged[3]) - (startTime ?? 0)
        : undefined;
  return {
    ...(duration !== undefined && duration > 0 ? { duration } : {}),
    ...(startTime !== undefined ? { startTime } : {}),
  };
}

/** ffprobe reports counter-clockwise degrees (e.g. -90); returns the clockwise turn in 0..270. */
function normaliseRotation(degrees: number): number {
  if (!Number.isFinite(degrees)) return 0;
  const quarter = Math.round(degrees / 90) * 90;
  return (((-quarter % 360) + 360) % 360) as 0 | 90 | 180 | 270;
}

function parseRatio(value: string | undefined): number {
  if (!value) return 0;
  const [num, den] = value.split(/[/:]/).map(Number);
  if (!num || !den || !Number.isFinite(num) || !Number.isFinite(den)) return 0;
  return num / den;
}

function firstPositive(...values: (number | undefined)[]): number | undefined {
  return values.find((v): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0);
}
