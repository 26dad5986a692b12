import path from 'node:path';
import type { StageContext } from '../pipeline/context.js';
import type { ConversionResult } from '../pipeline/convert.js';
import type { MediaInfo } from '../pipeline/media-info.js';
import type { EncodePlan } from '../pipeline/plan.js';
import { checkPackage } from './check-package.js';
import type { QcReport } from '../domain/qc-report.js';
import type { ProbePacket } from '../pipeline/probe.js';
import { sourceSpans, spansFrom, WHOLE_SOURCE_SECONDS, type SourceSpans } from './source-durations.js';

export type { SourceSpans };

/**
 * What the check needs of the source, started once the plan is known so it runs during the encode; a short
 * source is read from the probe's packets (`PROBED_PACKET_SECONDS`), not by a second ffprobe.
 */
export async function readSourceSpans(source: SourceToRead): Promise<SourceSpans> {
  const { media, plan, inputPath, ctx, probedPackets } = source;
  const [first] = plan.audioTracks;
  const indexes = {
    video: media.video.index,
    audio: first?.sourceIndex,
    audioStreams: plan.audioTracks.map((a) => a.sourceIndex),
  };
  if (probedPackets && media.duration <= WHOLE_SOURCE_SECONDS)
    return spansFrom({ packets: probedPackets }, indexes, media.startTime);
  return sourceSpans(ctx.tools.ffprobe, inputPath, indexes, {
    logger: ctx.logger,
    signal: ctx.signal,
    tempDir: ctx.tempDir,
    duration: media.duration,
    startTime: media.startTime,
    // A variable frame rate's pauses decide how long its segments may be: read whole.
    whole: plan.keepFrameTiming,
  });
}

/** The source of a conversion, as `readSourceSpans` reads it. */
export interface SourceToRead {
  media: MediaInfo;
  plan: EncodePlan;
  inputPath: string;
  ctx: StageContext;
  /** The packets the pipeline's probe listed, if it did. */
  probedPackets?: ProbePacket[];
}

/** A conversion to check, as `checkConversion` takes it. */
export interface ConversionToCheck {
  result: ConversionResult;
  inputPath: string;
  workDir: string;
  ctx: StageContext;
  /** Measure PSNR and SSIM too (QC_QUALITY). */
  quality: boolean;
  /** From `readSourceSpans`, started early; read here when absent. */
  sourceSpans?: Promise<SourceSpans>;
}

/** Checks the package of a conversion against its plan and its source (see `checkPackage`). */
export async function checkConversion(check: ConversionToCheck): Promise<QcReport> {
  const { result, inputPath, workDir, ctx } = check;
  const { media, plan } = result;
  const spans = await (check.sourceSpans ?? readSourceSpans({ media, plan, inputPath, ctx }));
  // Each track against its own stream of the source: a dub may end earlier than the original.
  const audioTracks = plan.audioTracks.map((a) => {
    const span = spans.audioStreams?.[a.sourceIndex];
    return {
      name: a.name,
      ...(span ? { duration: a.padStart ? span.end - spans.start : span.duration } : {}),
    };
  });
  const [firstAudio] = plan.audioTracks;
  const source = {
    // The encode's constant frame rate output starts where the earliest stream does (see `SourceSpans.start`),
    // and holds the last frame for `holdLastFrame` when the audio outlasts the video.
    video: spans.video.end + (plan.holdLastFrame ?? 0) - spans.start,
    // Audio that starts late is padded with silence from the output's start.
    audio: spans.audio && (firstAudio?.padStart ? spans.audio.end - spans.start : spans.audio.duration),
    lastVideoFrame: spans.video.lastSample,
    longestVideoFrame: plan.keepFrameTiming ? spans.video.longestSample : undefined,
  };
  const frameRate = plan.frameRateLimit ?? (media.video.frameRate > 0 ? media.video.frameRate : 30);
  const renditions = plan.renditions.map((r) => ({
    name: r.name,
    codec: r.codec,
    width: r.width,
    height: r.height,
  }));
  return checkPackage(
    {
      dir: result.package.dir,
      dashManifest: result.package.dashManifest,
      hlsMaster: result.package.hlsMaster,
      thumbnailTrack: result.thumbnails?.vtt,
      expect: {
        renditions,
        audio: plan.audioTracks.length > 0,
        audioTracks,
        textTracks: plan.textTracks.length,
        formats: plan.formats,
        segmentDuration: plan.segmentDuration,
        frameRate,
        source,
        audioSampleRate: Math.min(48_000, ...plan.audioTracks.map((a) => a.sampleRate)),
      },
    },
    {
      tools: ctx.tools,
      logger: ctx.logger,
      signal: ctx.signal,
      tempDir: ctx.tempDir,
      quality: check.quality
        ? {
            renditions,
            sourcePath: inputPath,
            videoIndex: media.video.index,
            frameRateLimit: plan.frameRateLimit,
            deinterlace: plan.deinterlace,
            toneMap: plan.toneMap,
            tempDir: path.join(workDir, 'qc'),
            idleTimeoutMs: ctx.idleTimeoutMs,
            maxRuntimeMs: ctx.maxRuntimeMs,
          }
        : undefined,
    },
  );
}
