import {
  DEINTERLACE,
  EVEN_CROP,
  holdVariableLastFrame,
  padToAspect,
  toneMapToSdr,
  zimgFilters,
  zimgResize,
} from './video-filters.js';
import { inputGuardArgs } from './input-formats.js';
import type { MediaInfo } from './media-info.js';
import type { EncodePlan } from './plan.js';
import { posterPick, posterWindow } from './poster.js';
import { imageOutputPrimer, primerInput, thumbnailFilters, type ThumbnailOutputs } from './thumbnails.js';
import { videoCodecSpecs } from './video-codecs.js';

/**
 * How the encode uses the machine; the defaults are what `tsx bench/levers.ts` supported, knob by knob
 * (BENCHMARKS.md, "Levers"): cascade scaling saves CPU, thread counts are left to FFmpeg and x264.
 */
export interface EncodeTuning {
  /**
   * Scale each rung from the next larger rung's frames instead of from the source: the full-size frame is read
   * by one scaler only.
   */
  cascade: boolean;
  /** Encoder threads per rendition (x264's, and the other codecs' too); 0 leaves the encoder's choice. */
  x264Threads: number;
  /** Decoder threads; 0 leaves FFmpeg's choice. */
  decodeThreads: number;
  /** Filter graph threads; 0 leaves FFmpeg's choice. */
  filterThreads: number;
  /**
   * Resizing algorithm for the rungs, by the name both resizers know it by (bicubic, bilinear, lanczos); a name
   * only libswscale knows (area, fast_bilinear…) makes the rungs with libswscale.
   */
  scaleFlags: string;
}

export const defaultTuning: EncodeTuning = {
  cascade: true,
  x264Threads: 0,
  decodeThreads: 0,
  filterThreads: 0,
  scaleFlags: 'bicubic',
};

export interface EncodeOutputs {
  /** Local file per rendition name. */
  video: Record<string, string>;
  /** Local file per audio track name (empty: no audio). */
  audio: Record<string, string>;
  /**
   * The poster, from this run's decoded frames (no second decode), chosen as makePoster chooses: an image2
   * pattern (`poster-%d.jpg`) whose frame 0 is the primer (see `imageOutputPrimer`), frame 1 the poster.
   */
  poster?: string;
  /** The seek-bar thumbnails' sheets and times, when the plan has thumbnails. */
  thumbnails?: ThumbnailOutputs;
}

/**
 * A part of the input encoded on its own (split and stitch, src/pipeline/chunks): times in seconds on the whole
 * input's timeline, which the part's frames keep, so that the parts join into the same timeline.
 */
export interface EncodeSpan {
  /** How FFmpeg opens the input (options and `-i` with its URL), in place of the local file's. */
  input: string[];
  /** Decoding starts at the keyframe at or before this. */
  seekTo: number;
  /** The frames kept: from `start`, up to before `end` (to the input's end when there is none). */
  start: number;
  end?: number;
  /** Seconds from its first frame to its first segment's time (see KeyframePlan.keyframeOffset). */
  keyframeOffset: number;
  /** Where the whole video's poster window starts on this timeline, when the part holds some of it. */
  posterAt?: number;
}

/** The file of frame `n` of an image2 output `pattern` (`%d`). */
export function imageFrame(pattern: string, n: number): string {
  return pattern.replace('%d', String(n));
}

/** What `buildEncodeArgs` encodes, from where, into what. */
export interface EncodeArgsOptions {
  inputPath: string;
  media: MediaInfo;
  plan: EncodePlan;
  outputs: EncodeOutputs;
  /** Threads and scaler flags (`defaultTuning` unless a bench lever says otherwise). */
  tuning?: EncodeTuning;
  /** Only this part of the input (split and stitch). */
  span?: EncodeSpan;
}

/**
 * The one FFmpeg run for the whole ladder in every codec: decoded once, scaled once per rung, split among the
 * codecs; the same frames and keyframe grid everywhere, so segments line up across renditions and codecs.
 */
export function buildEncodeArgs(encode: EncodeArgsOptions): string[] {
  const { inputPath, media, plan, outputs, tuning = defaultTuning, span } = encode;
  const pre: string[] = [];
  // The last frame is held only where the video ends.
  const toTheEnd = span?.end === undefined;
  if (plan.deinterlace) pre.push(DEINTERLACE);
  if (plan.frameRateLimit) pre.push(`fps=${plan.frameRateLimit}`);
  // 8-bit 4:2:0 is what every H.264 player decodes; 10-bit or 4:4:4 sources are converted once, before the split.
  // HDR sources keep their depth until they are tone-mapped (at the top rung's size, in filterGraph).
  if (!plan.toneMap) pre.push('format=yuv420p');
  // Video that ends before the audio: its last frame is held to the audio's end.
  if (plan.holdLastFrame && toTheEnd) pre.push(`tpad=stop_mode=clone:stop_duration=${plan.holdLastFrame}`);
  // A VFR source's last frame lasts as long as in the source. Only MP4 and MOV state a duration ending with
  // that frame (MPEG-TS's ends where it starts, and the filter would take the real frame for its copy).
  else if (
    toTheEnd &&
    plan.keepFrameTiming &&
    media.video.duration !== undefined &&
    /\b(mov|mp4)\b/.test(media.formatName)
  ) {
    // FFmpeg shifts the input's timestamps so that the file starts at 0.
    const end = (media.video.startTime ?? media.startTime) + media.video.duration - media.startTime;
    pre.push(holdVariableLastFrame(end, 1 / averageFps(media)));
  }
  // zimg refuses odd-sized 4:2:0 frames, which a stream may turn to midway (docs/design-notes.md, "Encode
  // graph"): an even crop first, then black bars to the planned shape (`pad` needs even sizes).
  if (usesZimg(plan, tuning) || plan.toneMap) {
    const top = plan.renditions[plan.renditions.length - 1]!;
    pre.push(EVEN_CROP, padToAspect(top.width / top.height));
  }
  // A part keeps its own frames exactly, by their times after the filters above (which saw the frames before).
  if (span) pre.push(`trim=start=${span.start}${span.end === undefined ? '' : `:end=${span.end}`}`);
  const thumbnails =
    plan.thumbnails && outputs.thumbnails
      ? thumbnailFilters(plan.thumbnails, plan.toneMap, outputs.thumbnails.times, { tile: !span })
      : undefined;
  const poster = posterFilters(media, plan, outputs, span);
  // Inputs 1 and up: the image outputs' primers (see imageOutputPrimer).
  const top = plan.renditions[plan.renditions.length - 1]!;
  // A part writes its thumbnails one by one (the stitch tiles them), the whole run as sheets.
  const tiles = span ? { columns: 1, rows: 1 } : plan.thumbnails;
  const sheet = plan.thumbnails &&
    tiles && {
      width: plan.thumbnails.width * tiles.columns,
      height: plan.thumbnails.height * tiles.rows,
    };
  const primers = [
    ...(poster ? [primerInput(top)] : []),
    ...(thumbnails && sheet ? [primerInput(sheet)] : []),
  ];
  const graph = filterGraph(`[0:${media.video.index}]${pre.join(',')}`, plan, tuning, {
    poster: poster ? { chain: poster, input: 1 } : undefined,
    thumbnails: thumbnails ? { chain: thumbnails, input: poster ? 2 : 1 } : undefined,
  });

  const args = [
    '-hide_banner',
    '-nostdin',
    '-y',
    ...(span
      ? // The source's timestamps (from 0), not the seek point's: the parts share the whole's timeline.
        ['-copyts', '-start_at_zero', '-noaccurate_seek', '-ss', span.seekTo.toFixed(6)]
      : []),
    ...(tuning.decodeThreads > 0 ? ['-threads', String(tuning.decodeThreads)] : []),
    // Only the local file may be opened, and only as a video container: a key can never smuggle in
    // concat:, http: or another protocol, nor an upload a playlist that names other files.
    ...(span?.input ?? [...inputGuardArgs(), '-i', `file:${inputPath}`]),
    ...primers.flat(),
    ...(tuning.filterThreads > 0 ? ['-filter_complex_threads', String(tuning.filterThreads)] : []),
    '-filter_complex',
    graph,
    '-progress',
    'pipe:1',
    '-nostats',
  ];

  plan.renditions.forEach((r, i) => {
    const file = outputs.video[r.name];
    if (!file) throw new Error(`no output path for ${r.name}`);
    args.push(
      '-map',
      `[v${i}]`,
      '-map_metadata',
      '-1',
      '-map_chapters',
      '-1',
      ...videoCodecSpecs[r.codec].args({
        rendition: r,
        plan: span ? { ...plan, keyframeOffset: span.keyframeOffset } : plan,
        averageFps: averageFps(media),
        ...(media.video.timeBase ? { timeBase: media.video.timeBase } : {}),
        threads: tuning.x264Threads,
      }),
      '-an',
      // A fragment per segment, front to back, so the packager reads it from a pipe as it is written;
      // delay_moov waits for the first fragment to write the edit list that puts the first frame at 0.
      '-movflags',
      '+frag_keyframe+empty_moov+delay_moov+default_base_moof',
      // A part starts where its edit list says, in the movie's timescale: milliseconds by default, which
      // put a 29.83 fps part's frames off their own timescale's grid.
      ...(span ? ['-movie_timescale', '1000000'] : []),
      '-f',
      'mp4',
      `file:${file}`,
    );
  });

  // Image outputs: the primer as frame 0, then their own at their own times (cfr would duplicate sheets). vfr
  // retimes a frame repeating the last time (the branch restarts when the source changes size): mjpeg refuses it.
  const images = (label: string, quality: number) => [
    ...['-map', `[${label}]`, '-map_metadata', '-1', '-fps_mode', 'vfr'],
    ...['-c:v', 'mjpeg', '-q:v', String(quality), '-start_number', '0', '-f', 'image2'],
  ];
  if (outputs.poster) args.push(...images('poster', 3), '-frames:v', '2', `file:${outputs.poster}`);
  // Sheets are written as they fill (a tile of 100 thumbnails is 200 s of video at the shortest interval).
  if (thumbnails && outputs.thumbnails)
    args.push(...images('thumbnails', 5), `file:${outputs.thumbnails.pattern}`);

  args.push(...audioOutputArgs(plan, outputs.audio));
  return args;
}

/**
 * Each audio track's output, copied or encoded from its source stream (input 0), for the tracks `files` names:
 * the decode of the video is shared whatever the number of tracks, and a split input's audio runs alone.
 */
export function audioOutputArgs(plan: EncodePlan, files: Record<string, string>): string[] {
  const args: string[] = [];
  for (const track of plan.audioTracks) {
    const file = files[track.name];
    if (!file) continue;
    args.push(
      '-map',
      `0:${track.sourceIndex}`,
      // The source's metadata stays out of the package (a phone's location among it); the packager labels
      // the track with its language.
      '-map_metadata',
      '-1',
      ...(track.copy
        ? // AAC from MPEG-TS, FLV or raw ADTS carries a header on every frame, and no setup for an MP4 header;
          // the filter moves it there (and leaves AAC from MP4 or Matroska as it is).
          ['-c:a', 'copy', '-bsf:a', 'aac_adtstoasc']
        : // Stereo at 48 kHz plays everywhere; 5.1 sources are downmixed.
          [
            // Audio that starts after the video: silence from where the video starts.
            ...(track.padStart ? ['-af', 'aresample=async=1:first_pts=0'] : []),
            ...['-c:a', 'aac', '-b:a', String(track.bitrate)],
            ...['-ac', String(track.channels), '-ar', String(track.sampleRate)],
          ]),
      '-vn',
      // Audio has no keyframes to cut fragments at: one fragment per segment's worth of samples. The edit
      // list that delay_moov allows hides the AAC encoder's priming samples, so audio stays in sync.
      '-movflags',
      '+empty_moov+delay_moov+default_base_moof',
      '-frag_duration',
      String(Math.round(plan.segmentDuration * 1e6)),
      '-f',
      'mp4',
      `file:${file}`,
    );
  }
  return args;
}

/** Whether the rungs are resized by zimg (FFmpeg's zscale) rather than libswscale. */
function usesZimg(plan: EncodePlan, tuning: EncodeTuning): boolean {
  return plan.scaler === 'zscale' && zimgFilters.has(tuning.scaleFlags);
}

/**
 * Decoded frames → `[v<i>]` per rendition (smallest first), `[poster]` and `[thumbnails]` when asked; each
 * rung has square pixels, so non-square sources are resampled to their display shape.
 */
function filterGraph(
  source: string,
  plan: EncodePlan,
  tuning: EncodeTuning,
  images: { poster?: ImageBranch; thumbnails?: ImageBranch },
): string {
  const { poster, thumbnails } = images;
  const rungs = rungsOf(plan);
  const n = rungs.length;
  const zimg = usesZimg(plan, tuning);
  const cascade = tuning.cascade && n > 1;
  // `fromSource`: the rung reads the decoded frames (every rung, or the top one when they cascade), which an HDR
  // source has tone-mapped there, in the same zimg pass as the resize.
  const scale = (i: number, fromSource: boolean) => {
    const r = rungs[i]!;
    const resize = zimg
      ? `zscale=${zimgResize(r, tuning.scaleFlags)}`
      : `scale=${r.width}:${r.height}:flags=${tuning.scaleFlags}`;
    return `${plan.toneMap && fromSource ? toneMapToSdr(zimgResize(r, tuning.scaleFlags)) : resize},setsar=1`;
  };
  // A rung's scaled frames to its encoders, and to the next smaller rung when they cascade.
  const outputs = (i: number, next?: string) => {
    const labels = rungs[i]!.outputs.map((o) => `[v${o}]`);
    if (next) labels.push(next);
    return labels.length > 1 ? `,split=${labels.length}${labels.join('')}` : labels[0]!;
  };
  // What reads the decoded frames: every rung, or only the top one when the rungs cascade; and the poster.
  const readers = cascade ? ['c'] : rungs.map((_, i) => `s${i}`);
  if (poster) readers.push('p');
  if (thumbnails) readers.push('t');
  const chains = [`${source},split=${readers.length}${readers.map((l) => `[${l}]`).join('')}`];
  if (cascade) {
    // Largest first: each scaled rung is split into its own outputs and the input of the next smaller one.
    let from = '[c]';
    for (let i = n - 1; i > 0; i--) {
      chains.push(`${from}${scale(i, i === n - 1)}${outputs(i, `[c${i}]`)}`);
      from = `[c${i}]`;
    }
    chains.push(`${from}${scale(0, false)}${outputs(0)}`);
  } else {
    rungs.forEach((_, i) => chains.push(`[s${i}]${scale(i, true)}${outputs(i)}`));
  }
  if (poster) chains.push(...imageOutputPrimer(`[p]${poster.chain}`, 'poster', poster.input));
  if (thumbnails) chains.push(...imageOutputPrimer(`[t]${thumbnails.chain}`, 'thumbnails', thumbnails.input));
  return chains.join(';');
}

/** The plan's sizes, smallest first, each with the indexes of its renditions (one per codec). */
function rungsOf(plan: EncodePlan): { width: number; height: number; outputs: number[] }[] {
  const rungs: { width: number; height: number; outputs: number[] }[] = [];
  plan.renditions.forEach((r, i) => {
    const rung = rungs.find((g) => g.width === r.width && g.height === r.height);
    if (rung) rung.outputs.push(i);
    else rungs.push({ width: r.width, height: r.height, outputs: [i] });
  });
  return rungs.sort((a, b) => a.width * a.height - b.width * b.height);
}

/** An image output's filters, and the input of its primer. */
interface ImageBranch {
  chain: string;
  input: number;
}

/**
 * The poster branch: the most representative non-dark frame of a short window a fifth of the way in, at the
 * top rung's size; the window closing the branch costs nothing after it; all dark, makePoster looks further.
 */
function posterFilters(
  media: MediaInfo,
  plan: EncodePlan,
  outputs: EncodeOutputs,
  span?: EncodeSpan,
): string | undefined {
  if (!outputs.poster || (span && span.posterAt === undefined)) return undefined;
  const fps = posterFps(media, plan);
  const { at, frames } = posterWindow(media, fps);
  const top = plan.renditions[plan.renditions.length - 1]!;
  const duration = ((frames + 1) / fps).toFixed(3);
  // A part's frames keep the whole input's times: its window is placed on them.
  const window = span
    ? [`trim=start=${span.posterAt!.toFixed(6)}:duration=${duration}`]
    : ['setpts=PTS-STARTPTS', `trim=start=${at.toFixed(3)}:duration=${duration}`];
  return [...window, ...posterPick(plan, top, frames)].join(',');
}

/** The frame rate the poster window is counted in. */
export function posterFps(media: MediaInfo, plan: Pick<EncodePlan, 'frameRateLimit'>): number {
  return plan.frameRateLimit ?? (media.video.frameRate || 25);
}

/** The source's average frame rate, as the probe read it (30 when it could not say). */
function averageFps(media: MediaInfo): number {
  return media.video.frameRate > 0 ? media.video.frameRate : 30;
}

/** Seconds of output written so far, from one line of `-progress pipe:1`; undefined for other lines. */
export function parseProgressLine(line: string): number | undefined {
  const m = /^out_time_(us|ms)=(\d+)$/.exec(line.trim());
  // Both keys are in microseconds (out_time_ms is misnamed in FFmpeg).
  return m ? Number(m[2]) / 1e6 : undefined;
}
