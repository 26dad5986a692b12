import { randomBytes } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { JobSettings } from './job-settings.js';
import { TaskFailure } from '../domain/failures.js';
import type { ServiceMetrics } from '../metrics/metrics.js';
import { convert, type ConversionResult, type ConvertStage } from '../pipeline/convert.js';
import { HLS_MASTER_NAME, MANIFEST_NAME } from '../pipeline/package.js';
import { nominalMediaBytes, type Rendition } from '../pipeline/plan.js';
import { POSTER_NAME } from '../pipeline/poster.js';
import type { MediaTools } from '../pipeline/tools.js';
import { checkConversion, readSourceSpans, type SourceSpans } from '../qc/check-conversion.js';
import { PROBED_PACKET_SECONDS } from '../qc/source-durations.js';
import { describeFailures, type QcReport } from '../domain/qc-report.js';
import type { EarlyOutput, RenditionOutput, TaskOutput, TaskRecord } from '../domain/task.js';
import type { TaskHandler, TaskRunContext } from '../queue/task-queue.js';
import { ownedWorkDirName } from './work-dirs.js';
import { joinKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { packagePrefixFor, resolveEncodeSettings } from './encode-settings.js';
import { diskFullInstead, ensureFreeSpace, fetchInput } from './fetch-input.js';
import { PackagePublisher } from './publish.js';
import { EtaEstimator, StageClock } from './stage-clock.js';

export interface TaskProcessorDeps {
  config: JobSettings;
  tools: MediaTools;
  input: Storage;
  output: Storage;
  logger: Logger;
  metrics?: ServiceMetrics;
}

/** Where each step of a task sits in its 0..100 progress. */
const span = { fetch: [0, 4], convert: [4, 95], qc: [95, 96], publish: [96, 100] } as const;

/**
 * The job layer: fetches the input, runs the pipeline in a private work directory, checks the package,
 * publishes it and describes it. The work directory is removed whatever happens.
 */
export function createTaskProcessor(deps: TaskProcessorDeps): TaskHandler {
  return async (task, ctx) => {
    const log = deps.logger.child({ taskId: task.id, attempt: ctx.attempt });
    const workDir = path.join(deps.config.workDir, workDirName(task));
    // Empty, whatever an earlier run of this task in this process left (named pipes would make mkfifo fail).
    await rm(workDir, { recursive: true, force: true });
    await mkdir(workDir, { recursive: true });
    const started = Date.now();
    deps.metrics?.workerActive.inc();
    try {
      const output = await runTask(task, ctx, workDir, deps, log).catch(async (err: unknown) => {
        throw await diskFullInstead(err, workDir);
      });
      log.info({ ms: Date.now() - started, prefix: output.prefix }, 'task completed');
      return output;
    } catch (err) {
      deps.metrics?.errors.inc({
        source: 'task',
        kind: err instanceof TaskFailure ? err.code : ctx.signal.aborted ? 'aborted' : 'internal',
      });
      log.warn(
        { ms: Date.now() - started, err: err instanceof TaskFailure ? err.message : err },
        'task run failed',
      );
      throw err;
    } finally {
      deps.metrics?.workerActive.dec();
      await rm(workDir, { recursive: true, force: true }).catch((err: unknown) =>
        log.error({ err }, 'could not remove the work directory'),
      );
    }
  };
}

/**
 * The publisher of run `attempt` of a task, its local copies in `workDir`. An earlier run whose process died
 * may have published part of a package (EARLY_MANIFEST, or a crash amid the top-level files): its media goes
 * when the task ends, whichever way.
 */
function publisherFor(
  task: TaskRecord,
  attempt: number,
  prefix: string,
  workDir: string,
  deps: Pick<TaskProcessorDeps, 'config' | 'output'>,
  log: Logger,
  signal?: AbortSignal,
): PackagePublisher {
  return new PackagePublisher(deps.output, prefix, path.join(workDir, 'replaced'), {
    concurrency: deps.config.uploadConcurrency,
    cacheControl: deps.config.cacheControl,
    logger: log,
    signal,
    taskId: task.id,
    attempt,
    earlierMedia: Array.from({ length: attempt - 1 }, (_, i) => mediaDirStem(task, i + 1)),
  });
}

/**
 * Takes back what the earlier runs of a task published, for a task that ends without running again after
 * they died (cancelled while it waited to be taken again, or out of runs): the top-level files get what they
 * held before the task (from the journal kept beside the package), and those runs' media goes. Failures are
 * logged: the task has ended either way.
 */
export async function withdrawAbandoned(
  task: TaskRecord,
  earlierRuns: number,
  deps: Pick<TaskProcessorDeps, 'config' | 'output' | 'logger'>,
): Promise<void> {
  const log = deps.logger.child({ taskId: task.id });
  const workDir = path.join(deps.config.workDir, ownedWorkDirName(`${task.id}-abandoned`));
  try {
    const prefix = packagePrefixFor(deps.config, task.request);
    await publisherFor(task, earlierRuns + 1, prefix, workDir, deps, log).withdraw();
  } catch (err) {
    log.warn({ err }, "could not take back what the task's earlier runs published");
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * The directory below the package's prefix for one run's segments and media playlists: the task's id, the
 * attempt and a random part, so that no other run ever writes into it (another task; a retry of this one; a
 * run handed back at shutdown, which keeps its attempt number; a task made again with the same idempotency
 * key, which keeps its id, once the first is forgotten).
 */
export function mediaDirName(task: Pick<TaskRecord, 'id'>, attempt: number): string {
  return `${mediaDirStem(task, attempt)}${randomBytes(3).toString('hex')}`;
}

/** What the media directories of a task's attempt start with. */
function mediaDirStem(task: Pick<TaskRecord, 'id'>, attempt: number): string {
  return `${task.id.replace(/[^A-Za-z0-9_-]/g, '_')}-${attempt}-`;
}

/** Work directories carry the process's identity, so a start-up sweep can tell which ones are orphans. */
export function workDirName(task: Pick<TaskRecord, 'id'>): string {
  return ownedWorkDirName(task.id);
}

async function runTask(
  task: TaskRecord,
  ctx: TaskRunContext,
  workDir: string,
  deps: TaskProcessorDeps,
  log: Logger,
): Promise<TaskOutput> {
  const { config } = deps;
  const settings = resolveEncodeSettings(config, task.request);
  const prefix = packagePrefixFor(config, task.request);
  const clock = new StageClock();
  const eta = new EtaEstimator();
  const at = (step: keyof typeof span, f: number) => span[step][0] + (span[step][1] - span[step][0]) * f;
  const locate = (file: string) => {
    const { bucket: _bucket, ...loc } = deps.output.location(joinKey(prefix, file));
    return loc;
  };
  const where = deps.output.place(prefix);
  // Set once EARLY_MANIFEST's first package is published: every later report says where it plays.
  let earlyOutput: EarlyOutput | undefined;
  const report = (stage: string, progress: number, encoding = false) => {
    clock.enter(stage);
    const etaSeconds = eta.update(progress / 100, encoding);
    ctx.reportProgress(stage, progress, { etaSeconds, ...(earlyOutput ? { earlyOutput } : {}) });
  };

  report('fetch', at('fetch', 0));
  const input = await fetchInput(deps.input, task.request.video_filename, workDir, {
    maxInputBytes: config.limits.maxInputBytes,
    // Room for the package and, with EARLY_MANIFEST, the first run's streams (each about the input's size at
    // most, in common cases); the other streams go through pipes, not files.
    reserveBytes: (size) => 2 * size + 64 * 1024 * 1024,
    signal: ctx.signal,
  });

  const stageCtx = {
    tools: deps.tools,
    logger: log,
    signal: ctx.signal,
    idleTimeoutMs: config.watchdog.idleTimeoutMs,
    maxRuntimeMs: config.watchdog.maxRuntimeMs,
  };
  // This run's segments and media playlists go to a directory of their own below the prefix: a package
  // published there before keeps playing, untouched, until this one replaces the top-level files.
  const mediaDir = mediaDirName(task, ctx.attempt);
  const publisher = publisherFor(task, ctx.attempt, prefix, workDir, deps, log, ctx.signal);
  let result: ConversionResult;
  let qc: QcReport | undefined;
  // The check's look at the source needs only the plan: it runs while the encode does.
  let sourceSpans: Promise<SourceSpans> | undefined;
  try {
    result = await convert(input.path, workDir, stageCtx, {
      settings,
      mediaDir,
      limits: config.limits,
      onProgress: (stage: ConvertStage, f) => report(stage, at('convert', f), stage === 'encode'),
      probePacketSeconds: config.qc.mode !== 'off' ? PROBED_PACKET_SECONDS : undefined,
      onPlan: async (media, plan, packets) => {
        // The fetch reserved room by the input's size; what the plan writes depends on its length instead (a
        // small screen recording of an hour makes a large package). With EARLY_MANIFEST the lowest rung and
        // the audio are written twice more (stream files and the early package); local output on the same
        // disk takes a copy of the package when it is published.
        const full = nominalMediaBytes(plan, media.duration);
        const [lowest] = plan.renditions;
        const early =
          config.earlyManifest && lowest && plan.renditions.length > 1
            ? 2 * nominalMediaBytes(plan, media.duration, { renditions: [lowest], audio: true })
            : 0;
        const copy = (await sameDisk(config.output, workDir)) ? full : 0;
        await ensureFreeSpace(workDir, (full + early + copy) * 1.25 + 32 * 1024 * 1024);
        if (config.qc.mode !== 'off') {
          sourceSpans = readSourceSpans(media, plan, input.path, stageCtx, packets);
          // Awaited by the check; a conversion that fails first must not leave it unhandled.
          sourceSpans.catch(() => undefined);
        }
      },
      onEarlyPackage: config.earlyManifest
        ? async (early, contents) => {
            await publisher.publish(early.dir, early.files);
            earlyOutput = {
              ...where,
              manifest: early.dashManifest ? locate(early.dashManifest) : undefined,
              hls_master: early.hlsMaster ? locate(early.hlsMaster) : undefined,
              renditions: contents.renditions.map(renditionOutput),
              audio: contents.audio,
            };
            log.info(
              { prefix, files: early.files.length },
              'early package published (lowest rung and audio)',
            );
          }
        : undefined,
    });

    if (config.qc.mode !== 'off') {
      report('qc', at('qc', 0));
      qc = await checkConversion(result, input.path, workDir, stageCtx, {
        quality: config.qc.quality,
        sourceSpans,
      });
      if (!qc.passed) {
        const why = describeFailures(qc);
        if (config.qc.mode === 'enforce') {
          throw new TaskFailure('qc_failed', `the package failed its quality checks: ${why}`);
        }
        log.warn({ qc: why }, 'the package failed quality checks; publishing anyway (QC_MODE=warn)');
      }
    }

    report('publish', at('publish', 0));
    // A package without an MPD or a master playlist (FORMATS, `formats`) removes the one an earlier package left.
    await publisher.publish(result.package.dir, result.package.files, {
      replacing: [MANIFEST_NAME, HLS_MASTER_NAME, POSTER_NAME],
    });
    // The manifests now name this run's media: an earlier run's goes, and the journal of what was replaced.
    await publisher.settle();
  } catch (err) {
    // What this task published (an early package, part of the full one) is taken back; what it replaced is
    // put back.
    await publisher.withdraw();
    throw err;
  }
  clock.stop();
  let bytes = 0;
  for (const f of result.package.files) bytes += (await stat(path.join(result.package.dir, f))).size;

  const timings = clock.seconds();
  const encodeSeconds = timings.encode ?? 0;
  const encodeSpeed = encodeSeconds > 0 ? result.media.duration / encodeSeconds : undefined;
  if (deps.metrics) {
    for (const [stage, seconds] of Object.entries(timings)) {
      if (stage !== 'total') deps.metrics.stageSeconds.observe({ stage }, seconds);
    }
    const fps = result.plan.frameRateLimit ?? (result.media.video.frameRate || 30);
    const pixels = result.plan.renditions.reduce((sum, r) => sum + r.width * r.height, 0);
    deps.metrics.encoded(settings.preset, result.media.duration, encodeSeconds, pixels * fps);
  }

  return {
    ...where,
    media_prefix: joinKey(prefix, mediaDir),
    manifest: result.package.dashManifest ? locate(result.package.dashManifest) : undefined,
    hls_master: result.package.hlsMaster ? locate(result.package.hlsMaster) : undefined,
    poster: locate(result.poster),
    renditions: result.plan.renditions.map(renditionOutput),
    audio: !!result.plan.audio,
    duration: Math.round(result.media.duration * 1000) / 1000,
    files: result.package.files.length,
    bytes,
    timings,
    ...(encodeSpeed ? { encode_speed: Math.round(encodeSpeed * 100) / 100 } : {}),
    ...(qc ? { qc } : {}),
  };
}

function renditionOutput(r: Rendition): RenditionOutput {
  return { name: r.name, width: r.width, height: r.height, bitrate: r.bitrate };
}

/** Whether the output is local storage on the same file system as the work directory. */
async function sameDisk(output: JobSettings['output'], workDir: string): Promise<boolean> {
  if (output.kind !== 'local') return false;
  const [a, b] = await Promise.all([stat(output.root).catch(() => undefined), stat(workDir)]);
  return !!a && a.dev === b.dev;
}
