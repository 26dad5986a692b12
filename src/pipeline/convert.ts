import { rename } from 'node:fs/promises';
import path from 'node:path';
import { TaskFailure } from '../errors.js';
import type { StageContext } from './context.js';
import { encode } from './encode.js';
import type { MediaInfo } from './media-info.js';
import { packageStreams, type PackageResult } from './package.js';
import { planEncode, type EncodePlan, type EncodeSettings } from './plan.js';
import { makePoster, POSTER_NAME } from './poster.js';
import { probe } from './probe.js';
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
}

export interface ConversionResult {
  media: MediaInfo;
  plan: EncodePlan;
  package: PackageResult;
  poster: string;
}

/** Where each stage sits in the whole conversion, as fractions: encoding is nearly all of the work. */
const stageSpan: Record<ConvertStage, [number, number]> = {
  probe: [0, 0.02],
  encode: [0.02, 0.92],
  package: [0.92, 0.98],
  poster: [0.98, 1],
};

/**
 * Converts one local input file into a DASH (and HLS) package inside `workDir`:
 * probe → plan → encode (one FFmpeg run for the whole ladder) → package → poster.
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
  const media = await probe(inputPath, {
    ffprobe: ctx.tools.ffprobe,
    logger: ctx.logger,
    signal: ctx.signal,
  });
  checkLimits(media, options.limits);
  await assertComplete(inputPath, media.formatName);
  const plan = planEncode(media, options.settings);
  ctx.logger.info(
    {
      duration: media.duration,
      source: `${media.video.width}x${media.video.height}`,
      rotation: media.video.rotation,
      renditions: plan.renditions.map((r) => `${r.width}x${r.height}@${r.bitrate}`),
      audio: !!plan.audio,
    },
    'plan',
  );

  report('encode', 0);
  const encoded = await encode(inputPath, media, plan, path.join(workDir, 'encoded'), ctx, (f) =>
    report('encode', f),
  );

  report('package', 0);
  const pkgDir = path.join(workDir, 'package');
  const pkg = await packageStreams(encoded, plan, pkgDir, ctx);

  report('poster', 0);
  const top = plan.renditions[plan.renditions.length - 1]!;
  // The encode run takes the poster from the frames it decodes anyway; a second decode only when it could not.
  if (encoded.poster) await rename(encoded.poster, path.join(pkgDir, POSTER_NAME));
  else await makePoster(inputPath, media, top, path.join(pkgDir, POSTER_NAME), ctx);
  pkg.files.push(POSTER_NAME);
  report('poster', 1);

  return { media, plan, package: pkg, poster: POSTER_NAME };
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
