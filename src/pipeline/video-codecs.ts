export const videoCodecs = ['h264', 'av1', 'vp9', 'hevc'] as const;
export type VideoCodec = (typeof videoCodecs)[number];

export function isVideoCodec(name: string): name is VideoCodec {
  return (videoCodecs as readonly string[]).includes(name);
}

/** The rendition's rate control. */
interface Rates {
  bitrate: number;
  maxrate: number;
  bufsize: number;
}

/** What of the plan the encoders' options depend on. */
interface KeyframePlan {
  preset: string;
  segmentDuration: number;
  gopFrames: number;
  keyint: number;
  keepFrameTiming: boolean;
  keyframesByCount: boolean;
  /**
   * A split part: seconds from its first frame to its first segment's start (≤ 0), so that its keyframes
   * fall on the frames the whole run's do (the expression's `t` counts from the part's own first frame).
   */
  keyframeOffset?: number;
}

/** What one output's encoder needs to know. */
export interface EncoderInput {
  rendition: Rates;
  plan: KeyframePlan;
  /** The source's average frame rate (for `-r` with variable frame rate timing). */
  averageFps: number;
  /** The source stream's time base (`1/15360`), which variable frame rate timing keeps, when the probe read it. */
  timeBase?: string;
  /** Encoder threads per rendition; 0 leaves the encoder's choice. */
  threads: number;
}

export interface VideoCodecSpec {
  /** FFmpeg's name of the encoder. */
  encoder: string;
  /** The rung's bitrate as a share of the H.264 rung's, for about the same picture (BENCHMARKS.md). */
  bitrateFactor: number;
  /** Encode CPU per output pixel relative to x264 at the same preset (BENCHMARKS.md), for plans and ETAs. */
  cpuFactor: number;
  /** Smallest width and height the encoder takes. */
  minSide: number;
  /**
   * Keyframes only every `gopFrames` frames, by count: FFmpeg 5.1's libsvtav1 ignores forced keyframes, so a
   * variable frame rate cannot be cut on time, and every other encoder then counts frames as it does.
   */
  keyframesByCount: boolean;
  /** The encoder's options, from `-c:v` to before the output's container options. */
  args(input: EncoderInput): string[];
}

/**
 * SVT-AV1 preset: 13 saved little CPU and lost PSNR at 720p and 1080p against 12, the fastest SVT-AV1 takes
 * at 360p and below (BENCHMARKS.md, "Modern codecs").
 */
export const SVT_AV1_PRESET = 12;

/** Capped VBR as H.264's: the target on average, peaks limited by maxrate over a bufsize window. */
const vbv = (r: Rates) => [
  '-b:v',
  String(r.bitrate),
  '-maxrate',
  String(r.maxrate),
  '-bufsize',
  String(r.bufsize),
];

const threads = (n: number) => (n > 0 ? ['-threads', String(n)] : []);

/**
 * A keyframe at every segment boundary only, so all renditions of all codecs cut at the same instants: by
 * time (VFR sources align too), or every `gopFrames` frames when an encoder of the plan cannot be told where.
 */
export function forceKeyframesExpr(plan: KeyframePlan): string {
  if (plan.keyframesByCount) return `expr:eq(mod(n,${plan.gopFrames}),0)`;
  if (plan.keyframeOffset)
    return `expr:gte(t,n_forced*${plan.segmentDuration}${plan.keyframeOffset.toFixed(6)})`;
  return `expr:gte(t,n_forced*${plan.segmentDuration})`;
}

/**
 * VFR: every frame at its own time, in the filters' time base; `-r` only gives FFmpeg 5.1 packet durations
 * (x264's have none), without which the MP4 muxer ended each fragment on a sample of no duration.
 */
function frameTiming(input: EncoderInput): string[] {
  return input.plan.keepFrameTiming
    ? // `-1` (the input's time base) is not found once the graph has other inputs (the image outputs' primers):
      // FFmpeg 5.1 then put the frames on the average rate's grid, a frame every 1/fps.
      ['-fps_mode', 'passthrough', '-enc_time_base', input.timeBase ?? '-1', '-r', String(input.averageFps)]
    : [];
}

/** What x264 and x265 are given alike: threads, preset, profile, rate cap and the forced keyframes. */
function x26xArgs(encoder: string, profile: string, input: EncoderInput): string[] {
  return [
    ...['-c:v', encoder, ...threads(input.threads), '-preset', input.plan.preset, '-profile:v', profile],
    ...vbv(input.rendition),
    ...['-force_key_frames', forceKeyframesExpr(input.plan)],
  ];
}

/** Every codec's encoder, by name: the compiler finds the one left out. */
export const videoCodecSpecs: Record<VideoCodec, VideoCodecSpec> = {
  h264: {
    encoder: 'libx264',
    bitrateFactor: 1,
    cpuFactor: 1,
    minSide: 2,
    keyframesByCount: false,
    args: (input) => {
      const { plan } = input;
      return [
        ...x26xArgs('libx264', 'high', input),
        // More frames than any segment holds: the only keyframes are the forced ones.
        '-g',
        String(plan.keyint),
        ...frameTiming(input),
        // No B-frames with variable timing: their delay in frames, after a pause, shifted decode times by
        // seconds and Shaka Packager's timeline then overlapped its own segments.
        ...(plan.keepFrameTiming ? ['-bf', '0'] : []),
        '-sc_threshold',
        '0',
      ];
    },
  },
  av1: {
    encoder: 'libsvtav1',
    bitrateFactor: 0.6,
    cpuFactor: 2,
    minSide: 64,
    keyframesByCount: true,
    args: (input) => {
      const { rendition: r, plan } = input;
      return [
        '-c:v',
        'libsvtav1',
        '-preset',
        String(SVT_AV1_PRESET),
        // SVT-AV1's VBR takes the target only (maxrate caps its CRF mode alone).
        '-b:v',
        String(r.bitrate),
        // A closed GOP of exactly one segment: its keyframes are where the other encoders force theirs.
        '-g',
        String(plan.gopFrames),
        // One thread per encoder: with every rung's encoder running at once, SVT-AV1's own thread pool cost
        // 1.4× the CPU for nothing (BENCHMARKS.md, "Modern codecs"). fast-decode is ignored past preset 10.
        ...['-svtav1-params', `lp=${input.threads > 0 ? input.threads : 1}`],
      ];
    },
  },
  vp9: {
    encoder: 'libvpx-vp9',
    bitrateFactor: 0.75,
    cpuFactor: 1.5,
    minSide: 2,
    keyframesByCount: false,
    args: (input) => {
      const { rendition: r, plan } = input;
      return [
        '-c:v',
        'libvpx-vp9',
        ...threads(input.threads),
        // Realtime at its fastest speed: within a third of x264's CPU (the good deadline is several times it).
        ...['-deadline', 'realtime', '-cpu-used', '8', '-row-mt', '1'],
        ...vbv(r),
        '-force_key_frames',
        forceKeyframesExpr(plan),
        '-g',
        String(plan.keyint),
        ...frameTiming(input),
      ];
    },
  },
  hevc: {
    encoder: 'libx265',
    bitrateFactor: 0.7,
    cpuFactor: 4.4,
    minSide: 2,
    keyframesByCount: false,
    args: (input) => {
      const { plan } = input;
      return [
        ...x26xArgs('libx265', 'main', input),
        // A forced keyframe is an IDR (x265 makes it an open-GOP I frame otherwise), and no scene-cut ones.
        '-forced-idr',
        '1',
        '-x265-params',
        `scenecut=0:open-gop=0:keyint=${plan.keyint}:min-keyint=1:log-level=error`,
        ...frameTiming(input),
        ...(plan.keepFrameTiming ? ['-bf', '0'] : []),
        // hvc1, not hev1: Apple's players take HEVC only with the parameter sets in the sample entry.
        '-tag:v',
        'hvc1',
      ];
    },
  },
};

/** The FFmpeg encoders that these codecs need. */
export function encodersFor(codecs: readonly VideoCodec[]): string[] {
  return [...new Set(codecs.map((c) => videoCodecSpecs[c].encoder))];
}
