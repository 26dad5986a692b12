import { rename } from 'node:fs/promises';
import path from 'node:path';
import { formatConflict, type EncryptionSpec } from '../domain/encryption.js';
import { TaskFailure } from '../domain/failures.js';
import type { StageContext } from './context.js';
import { encodeAndPackage, type EncodeAndPackageResult } from './encode-package.js';
import type { MediaInfo } from './media-info.js';
import type { PackageResult } from './package.js';
import { assertEveryStreamHasAKey } from './packager-encryption.js';
import {
  encodeWorkPixels,
  planEncode,
  type EncodePlan,
  type EncodeSettings,
  type Rendition,
} from './plan.js';
import { makePoster, POSTER_NAME } from './poster.js';
import { probeSource, type ProbePacket, type ProbeResult } from './probe.js';
import { prepareTextTracks } from './text-tracks.js';
import { addHlsImagePlaylist, addThumbnailTrack } from './thumbnail-track.js';
import { packageThumbnails, type ThumbnailResult } from './thumbnails.js';
import { assertComplete } from './truncation.js';

export type ConvertStage = 'probe' | 'encode' | 'package' | 'poster';

export interface InputLimits {
  maxDurationSeconds: number;
  /** Width × height of the displayed picture. */
  maxPixels: number;
  maxFrameRate: number;
}

export interface ConvertOptions {
  settings: EncodeSettings;
  limits: InputLimits;
  /** Receives the stage and the 0..1 fraction of the whole conversion done. */
  onProgress?: (stage: ConvertStage, fraction: number) => void;
  /**
   * Asks for an early package (the lowest rung and the audio, encoded in a run of their own) to publish before
   * the other rungs: playable sooner, finished later (a second decode). Ignored with a single rung.
   */
  onEarlyPackage?: (early: PackageResult, contents: EarlyPackageContents) => Promise<void>;
  /**
   * Called once the input is probed and planned, before anything is encoded (awaited: it may refuse), with
   * the packets of the first `probePacketSeconds` when asked for.
   */
  onPlan?: (media: MediaInfo, plan: EncodePlan, packets?: ProbePacket[]) => void | Promise<void>;
  /** Have the probe also list the packets of the input's first this many seconds, for `onPlan`. */
  probePacketSeconds?: number;
  /** The package's directory for the renditions' segments and playlists (see PackageOptions.mediaDir). */
  mediaDir?: string;
  /** The input's probe, already started by the caller (the CLI starts it while its modules load). */
  probed?: Promise<ProbeResult>;
  /** Raw-key encryption of every stream (the keys go to the packager in a file in `workDir`). */
  encryption?: EncryptionSpec;
  /** Local file of each subtitle file of `settings.subtitles`, by its filename. */
  subtitleFiles?: Record<string, string>;
}

export interface EarlyPackageContents {
  renditions: Rendition[];
  audio: boolean;
}

export interface ConversionResult {
  media: MediaInfo;
  plan: EncodePlan;
  package: PackageResult;
  poster: string;
  /** The seek-bar thumbnails in the package, when the plan has them and the video gave any. */
  thumbnails?: ThumbnailResult;
}

/**
 * Where each stage sits in the whole conversion, as fractions: encoding is nearly all of the work, and the
 * packager works during the encode, so what is left of it afterwards is short.
 */
const stageSpan: Record<ConvertStage, [number, number]> = {
  probe: [0, 0.02],
  encode: [0.02, 0.97],
  package: [0.97, 0.99],
  poster: [0.99, 1],
};

/**
 * Converts one local file into a DASH (and HLS) package inside `workDir`: probe → plan → encode (one FFmpeg
 * run for the whole ladder) and package (Shaka Packager reading the encoder's pipes) → poster.
 */
export async function convert(
  inputPath: string,
  workDir: string,
  ctx: StageContext,
  options: ConvertOptions,
): Promise<ConversionResult> {
  const report = (stage: ConvertStage, f: number) => {
    const [from, to] = stageSpan[stage];
    options.onProgress?.(stage, from + (to - from) * Math.max(0, Math.min(1, f)));
  };

  report('probe', 0);
  const { media, packets } = await (options.probed ??
    probeSource(inputPath, {
      ffprobe: ctx.tools.ffprobe,
      ffmpeg: ctx.tools.ffmpeg,
      logger: ctx.logger,
      signal: ctx.signal,
      tempDir: ctx.tempDir,
      packetSeconds: options.probePacketSeconds,
    }));
  checkLimits(media, options.limits);
  await assertComplete(inputPath, media.formatName);
  const planned = planEncode(media, options.settings);
  if (options.encryption) {
    const conflict = formatConflict(options.encryption, planned.formats);
    if (conflict) throw new TaskFailure('invalid_input', conflict);
    // Every audio track is encrypted with the audio's key; text tracks stay in the clear (see package.ts).
    assertEveryStreamHasAKey(options.encryption, [
      ...planned.renditions,
      ...(planned.audioTracks.length ? ['audio' as const] : []),
    ]);
  }
  const text = await prepareTextTracks({
    inputPath,
    media,
    plan: planned,
    sidecars: options.subtitleFiles ?? {},
    dir: path.join(workDir, 'text'),
    ctx,
  });
  const { plan } = text;
  ctx.logger.info(
    {
      duration: media.duration,
      source: `${media.video.width}x${media.video.height}`,
      rotation: media.video.rotation,
      renditions: plan.renditions.map((r) => `${r.width}x${r.height}@${r.bitrate}`),
      audio: plan.audioTracks.map((a) => `${a.language}${a.copy ? ' (copy)' : ''}`),
    },
    'plan',
  );
  for (const { codec, reason } of plan.codecsLeftOut) {
    ctx.logger.warn({ codec }, `${codec} ${plan.codecs.includes(codec) ? 'rungs ' : ''}left out: ${reason}`);
  }
  await options.onPlan?.(media, plan, packets);

  report('encode', 0);
  const pkgDir = path.join(workDir, 'package');
  const streamsDir = path.join(workDir, 'streams');
  const common = {
    inputPath,
    media,
    plan,
    streamsDir,
    ctx,
    mediaDir: options.mediaDir,
    text: text.files,
    // The key file goes beside the package, never into it: the work directory is private to the run.
    encryption: options.encryption ? { spec: options.encryption, keysDir: workDir } : undefined,
  };
  const { lowest, rest } = splitLowest(plan);
  let result: EncodeAndPackageResult;
  if (options.onEarlyPackage && lowest.length > 0 && rest.length > 0) {
    // Two runs: the lowest rung and the audio (kept as files), published as a package of their own; then the
    // other rungs, packaged together with the first run's streams into the full package.
    const firstShare = earlyRunShare(plan);
    const early = await encodeAndPackage({
      ...common,
      pkgDir: path.join(workDir, 'early'),
      renditions: lowest,
      poster: false,
      thumbnails: false,
      keepStreams: true,
      onProgress: (stage, f) => stage === 'encode' && report('encode', f * firstShare),
    });
    await options.onEarlyPackage(early.package, { renditions: lowest, audio: plan.audioTracks.length > 0 });
    result = await encodeAndPackage({
      ...common,
      pkgDir,
      renditions: rest,
      audio: false,
      alsoPackage: early.streams,
      onProgress: (stage, f) => report(stage, stage === 'encode' ? firstShare + f * (1 - firstShare) : f),
    });
  } else {
    result = await encodeAndPackage({ ...common, pkgDir, onProgress: report });
  }
  const pkg = result.package;
  report('package', 1);

  report('poster', 0);
  const top = plan.renditions[plan.renditions.length - 1]!;
  // The encode run takes the poster from the frames it decodes anyway; a second decode only when it could not.
  if (result.poster) await rename(result.poster, path.join(pkgDir, POSTER_NAME));
  else await makePoster({ inputPath, media, plan, size: top, outFile: path.join(pkgDir, POSTER_NAME), ctx });
  pkg.files.push(POSTER_NAME);
  const thumbnails =
    result.thumbnails && plan.thumbnails
      ? await packageThumbnails({
          outputs: result.thumbnails,
          plan: plan.thumbnails,
          pkgDir,
          mediaDir: options.mediaDir,
          duration: media.duration,
        })
      : undefined;
  if (thumbnails) {
    if (pkg.dashManifest) await addThumbnailTrack(pkgDir, pkg.dashManifest, thumbnails);
    pkg.files.push(thumbnails.vtt, ...thumbnails.sheets);
    if (pkg.hlsMaster) {
      pkg.files.push(await addHlsImagePlaylist(pkgDir, pkg.hlsMaster, thumbnails, media.duration));
    }
    pkg.files.sort();
  }
  report('poster', 1);

  return { media, plan, package: pkg, poster: POSTER_NAME, ...(thumbnails ? { thumbnails } : {}) };
}

/** The lowest rung's renditions (one per codec), which an early package holds, and the others. */
export function splitLowest(plan: Pick<EncodePlan, 'renditions'>): {
  lowest: Rendition[];
  rest: Rendition[];
} {
  const first = plan.renditions[0];
  const isLowest = (r: Rendition) => !!first && r.width === first.width && r.height === first.height;
  return { lowest: plan.renditions.filter(isLowest), rest: plan.renditions.filter((r) => !isLowest(r)) };
}

/**
 * The first run's share of the encoding time when the lowest rung goes first: each run decodes the whole
 * source (about a full ladder's encode), the first encodes the lowest rung only, weighted by codec CPU.
 */
function earlyRunShare(plan: EncodePlan): number {
  // Per frame: the frame rate is the same for both runs.
  const all = encodeWorkPixels(plan, 1);
  const first = encodeWorkPixels({ renditions: splitLowest(plan).lowest }, 1);
  return (all + first) / (3 * all);
}

/** Refuses inputs beyond the configured limits (also used by dry runs, before anything is encoded). */
export function checkLimits(media: MediaInfo, limits: InputLimits): void {
  const { width, height, frameRate } = media.video;
  if (media.duration > limits.maxDurationSeconds) {
    throw new TaskFailure(
      'limit_exceeded',
      `the input lasts ${Math.round(media.duration)} s, over the limit of ${limits.maxDurationSeconds} s`,
    );
  }
  if (width * height > limits.maxPixels) {
    throw new TaskFailure(
      'limit_exceeded',
      `the picture is ${width}x${height}, over the limit of ${limits.maxPixels} pixels`,
    );
  }
  if (frameRate > limits.maxFrameRate) {
    throw new TaskFailure(
      'limit_exceeded',
      `the frame rate is ${frameRate.toFixed(2)} fps, over the limit of ${limits.maxFrameRate} fps`,
    );
  }
}
