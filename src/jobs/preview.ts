import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ownedWorkDirName } from './work-dirs.js';
import type { JobSettings } from './job-settings.js';
import { checkLimits } from '../pipeline/convert.js';
import { UNDETERMINED } from '../pipeline/languages.js';
import { isHdr, type MediaInfo } from '../pipeline/media-info.js';
import {
  encodeWorkPixels,
  nominalMediaBytes,
  planEncode,
  type EncodePlan,
  type EncodeSettings,
} from '../pipeline/plan.js';
import { probe } from '../pipeline/probe.js';
import type { MediaTools } from '../pipeline/tools.js';
import type { PlanDocument as WirePlanDocument, PlanWarning } from '../domain/schemas/plan-document.js';
import type { Domain } from '../domain/schemas/wire.js';

/** The plan document as the domain holds it; the API maps it to the wire. */
export type PlanDocument = Domain<WirePlanDocument>;
import type { TaskRequest } from '../domain/task.js';
import type { Storage } from '../storage/storage.js';
import { packagePrefixFor, resolveEncodeSettings } from './encode-settings.js';
import { fetchInput } from './fetch-input.js';
import { decideSplit, type SplitDecision } from './split-decision.js';
import { fetchSidecars } from './storage-ends.js';
import { prepareTextTracks, skippedSubtitleMessage } from '../pipeline/text-tracks.js';

export interface PreviewDeps {
  config: JobSettings;
  tools: MediaTools;
  input: Storage;
  logger: Logger;
  /** Output pixels encoded per second by this process, by x264 preset, when measured. */
  measuredPixelRate?: (preset: string) => number | undefined;
}

/**
 * Rough output pixels per second of x264 with the whole ladder in one FFmpeg run on one modern core pair,
 * used until this process has measured its own speed. An estimate, labelled as such in the answer.
 */
const defaultPixelRate: Record<string, number> = {
  ultrafast: 80e6,
  superfast: 50e6,
  veryfast: 35e6,
  faster: 25e6,
  fast: 18e6,
  medium: 14e6,
  slow: 8e6,
  slower: 4e6,
  veryslow: 2e6,
};

/**
 * What a task for this request would do, without queueing it: the input is fetched and probed like a task
 * does, then planned with the request's settings; the answer adds estimates and warnings about the input.
 */
export async function previewTask(
  deps: PreviewDeps,
  request: TaskRequest,
  signal?: AbortSignal,
): Promise<PlanDocument> {
  const settings = resolveEncodeSettings(deps.config, request);
  const prefix = packagePrefixFor(deps.config, request);
  // Named as this process's, so the start-up sweep removes it if this process dies meanwhile.
  const workDir = path.join(deps.config.workDir, ownedWorkDirName(`plan-${randomUUID()}`));
  await mkdir(workDir, { recursive: true });
  try {
    const input = await fetchInput(deps.input, request.videoFilename, workDir, {
      maxInputBytes: deps.config.limits.maxInputBytes,
      signal,
    });
    const media = await probe(input.path, {
      ffprobe: deps.tools.ffprobe,
      ffmpeg: deps.tools.ffmpeg,
      logger: deps.logger,
      signal,
    });
    checkLimits(media, deps.config.limits);
    const planned = planEncode(media, settings);
    // Subtitle files are fetched and read as a task would: a missing one is a 404, a bad one a 400.
    const sidecars = await fetchSidecars(
      deps.input,
      (request.subtitles ?? []).map((s) => s.filename),
      workDir,
      signal,
    );
    const { plan } = await prepareTextTracks({
      inputPath: input.path,
      media,
      plan: planned,
      sidecars,
      dir: path.join(workDir, 'text'),
      ctx: {
        tools: deps.tools,
        logger: deps.logger,
        signal,
        idleTimeoutMs: 60_000,
        maxRuntimeMs: 300_000,
        tempDir: workDir,
      },
    });
    return describePlan({
      request,
      prefix,
      inputBytes: input.size,
      media,
      plan,
      settings,
      measuredPixelRate: deps.measuredPixelRate,
      split: decideSplit({ config: deps.config, request, media, plan }),
    });
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch((err: unknown) =>
      deps.logger.error({ err }, 'could not remove a dry-run work directory'),
    );
  }
}

export function describePlan({
  request,
  prefix,
  inputBytes,
  media,
  plan,
  settings,
  measuredPixelRate,
  split,
}: {
  request: TaskRequest;
  /** Where the package would go. */
  prefix: string;
  inputBytes: number;
  media: MediaInfo;
  plan: EncodePlan;
  settings: EncodeSettings;
  /** Output pixels encoded per second, by preset, when this process has measured it. */
  measuredPixelRate?: (preset: string) => number | undefined;
  /** Whether the video would be encoded in chunks (absent: not split). */
  split?: SplitDecision;
}): PlanDocument {
  const v = media.video;
  const outputFps = plan.frameRateLimit ?? (v.frameRate > 0 ? v.frameRate : 30);
  // Every codec's encoders, in H.264-equivalent pixels (AV1, VP9 and HEVC cost more per pixel).
  const pixelsPerSecond = encodeWorkPixels(plan, outputFps);
  const measured = measuredPixelRate?.(plan.preset);
  const pixelRate = measured ?? defaultPixelRate[plan.preset] ?? defaultPixelRate.veryfast!;
  // Encoding dominates; probing, packaging, the poster, the checks and publishing add a little.
  const workSeconds = (pixelsPerSecond * media.duration) / pixelRate + 1 + media.duration * 0.02;

  const warnings: PlanWarning[] = [];
  const mainAudio = plan.audioTracks.find((a) => a.isDefault);
  if (v.variableFrameRate) {
    warnings.push({
      code: 'variable_frame_rate',
      message: `the frame rate varies (about ${v.frameRate.toFixed(2)} fps on average); frames keep their timing and keyframes are placed by time`,
    });
  }
  if (v.codedWidth % 2 || v.codedHeight % 2) {
    warnings.push({
      code: 'odd_dimensions',
      message: `the picture is ${v.codedWidth}x${v.codedHeight}; renditions are rounded to even sizes`,
    });
  }
  if (v.rotation) {
    warnings.push({
      code: 'rotation',
      message: `the video is stored rotated (${v.rotation}° clockwise); renditions are encoded upright at ${v.width}x${v.height}`,
    });
  }
  if (v.interlaced) {
    warnings.push({
      code: 'interlaced',
      message:
        'the video is interlaced: it is deinterlaced (bwdif) to progressive frames at the same frame rate',
    });
  }
  if (isHdr(v)) {
    const transfer = v.colorTransfer === 'smpte2084' ? 'PQ' : 'HLG';
    warnings.push({
      code: 'hdr',
      message: plan.toneMap
        ? `the video is HDR (${transfer}): renditions are tone-mapped to SDR BT.709`
        : `the video is HDR (${transfer}) and is not tone-mapped (SCALER=swscale; zimg does it): renditions keep its colour tags in 8 bits, which band and look washed out in many players`,
    });
  }
  if (!media.audio) warnings.push({ code: 'no_audio', message: 'the input has no audio stream' });
  if (Math.abs(v.sampleAspectRatio - 1) > 0.01) {
    warnings.push({
      code: 'non_square_pixels',
      message: `the pixels are not square (${v.sampleAspectRatio.toFixed(3)}:1); renditions use square pixels at the displayed shape`,
    });
  }
  if (plan.frameRateLimit) {
    warnings.push({
      code: 'frame_rate_reduced',
      message: `the frame rate is reduced from ${v.frameRate.toFixed(2)} to ${plan.frameRateLimit} fps`,
    });
  }
  const shortSide = Math.min(v.width, v.height);
  const skipped = settings.ladder.filter((r) => r.height > shortSide);
  if (plan.sourceSizedRung && skipped.length === settings.ladder.length) {
    warnings.push({
      code: 'source_sized_rung',
      message: `every rung is larger than the source; one rendition is made at the source size`,
    });
  } else if (skipped.length) {
    const instead = plan.sourceSizedRung ? `; the top rendition is made at the source's size instead` : '';
    warnings.push({
      code: 'rungs_skipped',
      message: `rungs above the source's ${shortSide}p are skipped (never upscaled): ${skipped.map((r) => `${r.height}p`).join(', ')}${instead}`,
    });
  }

  for (const { codec, reason } of plan.codecsLeftOut) {
    const what = plan.codecs.includes(codec) ? `${codec} rungs left out` : `${codec} left out`;
    warnings.push({ code: 'codec_left_out', message: `${what}: ${reason}` });
  }
  if (!plan.codecs.includes('h264')) {
    warnings.push({
      code: 'no_h264',
      message: `no H.264 renditions (video_codecs: ${plan.codecs.join(', ')}): players and devices without ${plan.codecs.join(' or ')} decoding cannot play the package`,
    });
  }

  if (plan.audioTracks.some((a) => a.padStart)) {
    warnings.push({
      code: 'audio_starts_late',
      message:
        'the audio starts after the video: silence is added before it (the audio is encoded, not copied)',
    });
  }
  for (const s of plan.skippedSubtitles) {
    warnings.push({
      code: 'subtitles_skipped',
      message: skippedSubtitleMessage(s),
    });
  }
  if (plan.holdLastFrame) {
    warnings.push({
      code: 'video_ends_early',
      message: `the video ends ${plan.holdLastFrame} s before the audio: its last frame is held to the end`,
    });
  }

  return {
    dryRun: true,
    videoFilename: request.videoFilename,
    outputPrefix: prefix,
    input: {
      bytes: inputBytes,
      container: media.formatName,
      duration: round(media.duration, 3),
      video: {
        codec: v.codec,
        width: v.width,
        height: v.height,
        codedWidth: v.codedWidth,
        codedHeight: v.codedHeight,
        rotation: v.rotation,
        sampleAspectRatio: round(v.sampleAspectRatio, 4),
        frameRate: round(v.frameRate, 3),
        variableFrameRate: v.variableFrameRate,
        interlaced: v.interlaced,
        pixelFormat: v.pixelFormat,
      },
      audio: media.audio
        ? {
            codec: media.audio.codec,
            channels: media.audio.channels,
            sampleRate: media.audio.sampleRate,
            language: media.audio.language ?? null,
          }
        : null,
    },
    plan: {
      renditions: plan.renditions.map((r) => ({
        name: r.name,
        codec: r.codec,
        width: r.width,
        height: r.height,
        bitrate: r.bitrate,
        maxrate: r.maxrate,
        bufsize: r.bufsize,
      })),
      audio: mainAudio
        ? {
            bitrate: mainAudio.bitrate,
            channels: mainAudio.channels,
            sampleRate: mainAudio.sampleRate,
            copy: mainAudio.copy,
            language: mainAudio.language === UNDETERMINED ? null : mainAudio.language,
          }
        : null,
      videoCodecs: plan.codecs,
      audioTracks: plan.audioTracks.map((a) => ({
        name: a.name,
        sourceIndex: a.sourceIndex,
        language: a.language,
        label: a.label,
        default: a.isDefault,
        audioDescription: a.describesVideo,
        channels: a.channels,
        sampleRate: a.sampleRate,
        bitrate: a.bitrate,
        copy: a.copy,
      })),
      subtitles: plan.textTracks.map((t) => ({
        name: t.name,
        language: t.language,
        label: t.label,
        forced: t.forced,
        source: 'sidecar' in t.source ? t.source.sidecar : `stream ${t.source.embedded}`,
      })),
      frameRate: round(outputFps, 3),
      frameRateLimit: plan.frameRateLimit ?? null,
      gopFrames: plan.gopFrames,
      segmentDuration: plan.segmentDuration,
      segments: Math.max(1, Math.ceil(media.duration / plan.segmentDuration - 1e-6)),
      preset: plan.preset,
      formats: plan.formats,
      sourceSizedRung: plan.sourceSizedRung,
    },
    estimate: {
      outputBytes: Math.round(nominalMediaBytes(plan, media.duration) * 1.03),
      workSeconds: round(workSeconds, 1),
      basis: measured ? 'measured' : 'default',
    },
    split: {
      chunks: split?.chunks.length ?? 0,
      chunkSeconds: split?.chunkSeconds ?? 0,
      spans: (split?.chunks ?? []).map((c) => ({ index: c.index, start: c.start, end: c.end })),
      reason: split?.reason ?? 'encoded in one run',
    },
    warnings,
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
