import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeEncryption, type EncryptionSpec } from '../domain/encryption.js';
import { TaskFailure } from '../domain/failures.js';
import { describeFailures, type QcReport } from '../domain/qc-report.js';
import type {
  EarlyOutput,
  OutputWarning,
  RenditionOutput,
  TaskOutput,
  ThumbnailsOutput,
} from '../domain/task.js';
import { convert, type ConversionResult, type ConvertStage } from '../pipeline/convert.js';
import type { ConvertOptions } from '../pipeline/convert.js';
import type { StageContext } from '../pipeline/context.js';
import type { PackageResult } from '../pipeline/package.js';
import type { EncodePlan, EncodeSettings, Rendition } from '../pipeline/plan.js';
import type { ProbeResult } from '../pipeline/probe.js';
import { skippedSubtitleMessage } from '../pipeline/text-tracks.js';
import type { ThumbnailResult } from '../pipeline/thumbnails.js';
import type { MediaTools } from '../pipeline/tools.js';
import { checkConversion, readSourceSpans, type SourceSpans } from '../qc/check-conversion.js';
import { diskFullInstead, DiskStallWatch, ensureFreeSpace, workSpaceNeeded } from './disk-space.js';
import { stageContext, type JobSettings } from './job-settings.js';
import { probePacketSeconds } from './probe-packets.js';
import { EtaEstimator, StageClock } from './stage-clock.js';

/** Where a conversion's input comes from: the input storage (fetched), or a local file. */
export interface InputSource {
  /** Makes the input readable as a local file; `workDir` may take a download. */
  resolve(
    workDir: string,
    signal: AbortSignal,
  ): Promise<{
    path: string;
    /** Local file of each subtitle file, by filename. */ subtitles?: Record<string, string>;
  }>;
}

/** A file of a published package, as the report names it. */
export interface PackageLocation {
  key: string;
  url?: string;
}

/** Where a conversion's package goes: storage through the PackagePublisher, or a local directory. */
export interface PackageDestination {
  /** Where packages go, as the report says it; `media_prefix` is where `mediaDir` is. */
  readonly where: Pick<TaskOutput, 'storage' | 'bucket' | 'prefix' | 'mediaPrefix'>;
  /** The directory below `where.prefix` for this run's segments and media playlists, if any. */
  readonly mediaDir?: string;
  locate(file: string): PackageLocation;
  /** Whether publishing copies the package onto the work directory's disk (room needed for it there). */
  copiesOnDiskOf(workDir: string): Promise<boolean>;
  /** EARLY_MANIFEST's first package (lowest rung and audio), which `publish` then replaces. */
  publishEarly(pkg: PackageResult): Promise<void>;
  publish(pkg: PackageResult): Promise<void>;
  /** Takes back what this run published; called when the run fails after publishing may have begun. */
  withdraw(): Promise<void>;
}

export interface RunProgress {
  stage: string;
  /** 0..100 of the whole run. */
  progress: number;
  etaSeconds?: number;
  /** Set once EARLY_MANIFEST's first package is published. */
  earlyOutput?: EarlyOutput;
}

export type RunnerSettings = Pick<JobSettings, 'earlyManifest' | 'qc' | 'limits' | 'watchdog'>;

export interface ConversionRun {
  source: InputSource;
  destination: PackageDestination;
  settings: EncodeSettings;
  config: RunnerSettings;
  tools: MediaTools;
  /** Private to this run, empty; the caller removes it. */
  workDir: string;
  logger: Logger;
  signal: AbortSignal;
  onProgress?: (progress: RunProgress) => void;
  /** The package check's verdict, before it is acted on (QC_MODE=off: never called). */
  onQc?: (report: QcReport) => void;
  /** The input's probe, already started by the caller, with the packets QC asks for (`probePacketSeconds`). */
  probed?: Promise<ProbeResult>;
  /** Raw-key encryption of the package (resolved: keys included); the report lists its key IDs only. */
  encryption?: EncryptionSpec;
  /**
   * How the input becomes a package in the work directory: convert() (one run) unless given; a split task's
   * last run joins its chunks here instead (see split-steps.ts). QC and publishing are the same either way.
   */
  encode?: Encoder;
}

/** convert()'s shape: the input's package in `workDir`, with its probe and plan. */
export type Encoder = (
  inputPath: string,
  workDir: string,
  ctx: StageContext,
  options: ConvertOptions,
) => Promise<ConversionResult>;

export interface ConversionRunResult {
  /** The report: the status document's `output`, `timings`, `encode_speed` and `qc`. */
  output: TaskOutput;
  conversion: ConversionResult;
}

/** Where each step of a run sits in its 0..100 progress. */
const span = { fetch: [0, 4], convert: [4, 95], qc: [95, 96], publish: [96, 100] } as const;

/**
 * One conversion, for the queue's worker and the CLI alike: input → probe/plan → encode+package → poster →
 * QC → publish, then the report. What the destination published is withdrawn when the run fails.
 */
export async function runConversion(run: ConversionRun): Promise<ConversionRunResult> {
  // A work disk that fills up under the encode stops the run in seconds (see DiskStallWatch); the caller's
  // signal stops it as before (forwarded by hand: AbortSignal.any is Node 20.3+).
  const stop = new AbortController();
  const forward = () => stop.abort(run.signal.reason);
  if (run.signal.aborted) forward();
  else run.signal.addEventListener('abort', forward, { once: true });
  let stalled: TaskFailure | undefined;
  const watch = new DiskStallWatch(run.workDir, (failure) => {
    stalled = failure;
    stop.abort(failure);
  });
  try {
    return await runSteps({ ...run, signal: stop.signal }, watch);
  } catch (err) {
    if (stalled && !run.signal.aborted) throw new TaskFailure(stalled.code, stalled.message, { cause: err });
    throw await diskFullInstead(err, run.workDir);
  } finally {
    watch.stop();
    run.signal.removeEventListener('abort', forward);
  }
}

async function runSteps(run: ConversionRun, watch: DiskStallWatch): Promise<ConversionRunResult> {
  const { config, destination, logger: log, signal, workDir } = run;
  const clock = new StageClock();
  const eta = new EtaEstimator();
  const at = (step: keyof typeof span, f: number) => span[step][0] + (span[step][1] - span[step][0]) * f;
  let earlyOutput: EarlyOutput | undefined;
  const report = (stage: string, progress: number, encoding = false) => {
    clock.enter(stage);
    watch.report(stage, progress);
    const etaSeconds = eta.update(progress / 100, encoding);
    run.onProgress?.({ stage, progress, etaSeconds, ...(earlyOutput ? { earlyOutput } : {}) });
  };

  report('fetch', at('fetch', 0));
  const input = await run.source.resolve(workDir, signal);

  // The programs' temporary files stay in the work directory: on the disk they are renamed onto, and removed
  // with it (Shaka Packager renames its playlists from there: across disks that fails).
  const tempDir = path.resolve(workDir, 'tmp');
  await mkdir(tempDir, { recursive: true });
  const stageCtx = stageContext({
    tools: run.tools,
    logger: log,
    signal,
    watchdog: config.watchdog,
    tempDir,
  });
  const qcOn = config.qc.mode !== 'off';
  let qc: QcReport | undefined;
  // The check's look at the source needs only the plan: it runs while the encode does.
  let sourceSpans: Promise<SourceSpans> | undefined;
  try {
    const result = await (run.encode ?? convert)(input.path, workDir, stageCtx, {
      settings: run.settings,
      mediaDir: destination.mediaDir,
      limits: config.limits,
      probed: run.probed,
      encryption: run.encryption,
      subtitleFiles: input.subtitles,
      onProgress: (stage: ConvertStage, f) => report(stage, at('convert', f), stage === 'encode'),
      probePacketSeconds: probePacketSeconds(config),
      onPlan: async (media, plan, packets) => {
        // Room for what the plan writes, by its length and bitrates (not the input's size).
        const needed = workSpaceNeeded(plan, media.duration, {
          earlyManifest: config.earlyManifest,
          copiedOnSameDisk: await destination.copiesOnDiskOf(workDir),
          quality: qcOn && config.qc.quality,
        });
        await ensureFreeSpace(workDir, needed);
        if (qcOn) {
          sourceSpans = readSourceSpans({
            media,
            plan,
            inputPath: input.path,
            ctx: stageCtx,
            probedPackets: packets,
          });
          // Awaited by the check; a conversion that fails first must not leave it unhandled.
          sourceSpans.catch(() => undefined);
        }
      },
      onEarlyPackage: config.earlyManifest
        ? async (early, contents) => {
            await destination.publishEarly(early);
            const { mediaPrefix: _m, ...where } = destination.where;
            earlyOutput = {
              ...where,
              manifest: early.dashManifest ? destination.locate(early.dashManifest) : undefined,
              hlsMaster: early.hlsMaster ? destination.locate(early.hlsMaster) : undefined,
              renditions: contents.renditions.map(renditionOutput),
              audio: contents.audio,
              ...(run.encryption ? { encryption: describeEncryption(run.encryption) } : {}),
            };
            log.info(
              { prefix: where.prefix, files: early.files.length },
              'early package published (lowest rung and audio)',
            );
          }
        : undefined,
    });
    // Stopped as the last program ended: stopped all the same.
    signal.throwIfAborted();

    if (qcOn) {
      report('qc', at('qc', 0));
      // Measuring quality decodes the package: encrypted, that would need the key on FFmpeg's command line.
      if (config.qc.quality && run.encryption) log.info('QC_QUALITY skipped: the package is encrypted');
      qc = await checkConversion({
        result,
        inputPath: input.path,
        workDir,
        ctx: stageCtx,
        quality: config.qc.quality && !run.encryption,
        sourceSpans,
      });
      run.onQc?.(qc);
      if (!qc.passed) {
        const why = describeFailures(qc);
        if (config.qc.mode === 'enforce') {
          throw new TaskFailure('qc_failed', `the package failed its quality checks: ${why}`);
        }
        log.warn({ qc: why }, 'the package failed quality checks; publishing anyway (QC_MODE=warn)');
      }
    }

    // Counted before publishing: a destination may move the files away.
    const bytes = await packageBytes(result.package);
    report('publish', at('publish', 0));
    await destination.publish(result.package);
    clock.stop();
    const output = describeOutput({
      conversion: result,
      destination,
      bytes,
      timings: clock.seconds(),
      qc,
      encryption: run.encryption,
    });
    return { output, conversion: result };
  } catch (err) {
    // What this run published (an early package, part of the full one) is taken back.
    await destination.withdraw();
    throw err;
  }
}

/**
 * The report of a completed run: what the status document's `output` (and its `timings`, `encode_speed`
 * and `qc`) carries, and what `convert --report` writes.
 */
export function describeOutput({
  conversion,
  destination,
  bytes,
  timings,
  qc,
  encryption,
}: {
  conversion: ConversionResult;
  destination: Pick<PackageDestination, 'where' | 'locate'>;
  /** The package's size. */
  bytes: number;
  timings: Record<string, number>;
  qc?: QcReport;
  encryption?: EncryptionSpec;
}): TaskOutput {
  const { media, plan, package: pkg } = conversion;
  const encodeSeconds = timings.encode ?? 0;
  const encodeSpeed = encodeSeconds > 0 ? media.duration / encodeSeconds : undefined;
  return {
    ...destination.where,
    manifest: pkg.dashManifest ? destination.locate(pkg.dashManifest) : undefined,
    hlsMaster: pkg.hlsMaster ? destination.locate(pkg.hlsMaster) : undefined,
    poster: destination.locate(conversion.poster),
    ...(conversion.thumbnails ? { thumbnails: thumbnailsOutput(conversion.thumbnails, destination) } : {}),
    renditions: plan.renditions.map(renditionOutput),
    audio: plan.audioTracks.length > 0,
    subtitles: plan.textTracks.map((t) => ({
      language: t.language,
      label: t.label,
      forced: t.forced,
      source: 'sidecar' in t.source ? t.source.sidecar : `stream ${t.source.embedded}`,
    })),
    ...(plan.skippedSubtitles.length ? { warnings: plan.skippedSubtitles.map(skippedWarning) } : {}),
    audioTracks: plan.audioTracks.map((a) => ({
      language: a.language,
      label: a.label,
      channels: a.channels,
      default: a.isDefault,
      audioDescription: a.describesVideo,
    })),
    duration: Math.round(media.duration * 1000) / 1000,
    files: pkg.files.length,
    bytes,
    timings,
    ...(encodeSpeed ? { encodeSpeed: Math.round(encodeSpeed * 100) / 100 } : {}),
    ...(qc ? { qc } : {}),
    ...(encryption ? { encryption: describeEncryption(encryption) } : {}),
  };
}

function skippedWarning(s: EncodePlan['skippedSubtitles'][number]): OutputWarning {
  return {
    code: 'subtitles_skipped',
    message: skippedSubtitleMessage(s),
  };
}

async function packageBytes(pkg: PackageResult): Promise<number> {
  let bytes = 0;
  for (const f of pkg.files) bytes += (await stat(path.join(pkg.dir, f))).size;
  return bytes;
}

function thumbnailsOutput(
  thumbs: ThumbnailResult,
  destination: Pick<PackageDestination, 'locate'>,
): ThumbnailsOutput {
  const { interval, width, height, columns, rows } = thumbs.plan;
  return {
    vtt: destination.locate(thumbs.vtt),
    sheets: thumbs.sheets.map((s) => destination.locate(s)),
    ...{ interval, width, height, columns, rows },
  };
}

function renditionOutput(r: Rendition): RenditionOutput {
  return { name: r.name, codec: r.codec, width: r.width, height: r.height, bitrate: r.bitrate };
}
