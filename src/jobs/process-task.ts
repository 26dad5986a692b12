import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { TaskFailure } from '../domain/failures.js';
import type { TaskOutput, TaskRecord } from '../domain/task.js';
import type { ServiceMetrics } from '../metrics/metrics.js';
import type { ConversionResult } from '../pipeline/convert.js';
import { encodeWorkPixels, planEncode, type EncodeSettings } from '../pipeline/plan.js';
import type { MediaTools } from '../pipeline/tools.js';
import { StepsQueued, type TaskHandler, type TaskRunContext } from '../queue/task-queue.js';
import type { Storage } from '../storage/storage.js';
import { adoptablePackage, removeCompletionRecord, writeCompletionRecord } from './completion-record.js';
import { packagePrefixFor, resolveEncodeSettings, resolveRequestEncryption } from './encode-settings.js';
import { stageContext, type JobSettings } from './job-settings.js';
import { PackagePublisher } from './publish.js';
import { runConversion, type Encoder, type InputSource } from './run-conversion.js';
import { probePacketSeconds } from './probe-packets.js';
import { decideSplit, splitSettings } from './split-decision.js';
import { splitSteps, stitchEncoder, type SplitState } from './split-steps.js';
import type { EncryptionSpec } from '../domain/encryption.js';
import { checkLimits } from '../pipeline/convert.js';
import { chunksInQueueOrder } from '../pipeline/chunks/chunk-starts.js';
import { convertInChunks } from '../pipeline/chunks/convert-in-chunks.js';
import { assertEveryStreamHasAKey } from '../pipeline/packager-encryption.js';
import { probeSource, type ProbeResult } from '../pipeline/probe.js';
import { assertComplete } from '../pipeline/truncation.js';
import { storageDestination, storageInput } from './storage-ends.js';
import { ownedWorkDirName } from './work-dirs.js';

export interface TaskProcessorDeps {
  config: JobSettings;
  tools: MediaTools;
  input: Storage;
  output: Storage;
  logger: Logger;
  metrics?: ServiceMetrics;
}

/**
 * The queue's handler: runs the conversion runner in a private work directory, removed whatever happens.
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
    const records = { storage: deps.output, outputPrefix: deps.config.outputPrefix, workDir, logger: log };
    try {
      // An earlier run published the package and died, or lost the queue, before the task was recorded
      // completed: its package is current and whole, so this run only records it.
      const adopted = ctx.attempt > 1 ? await adoptablePackage(task, records) : undefined;
      if (adopted) {
        log.info({ publishedBy: adopted.attempt }, 'adopted the package an earlier run published');
        return adopted.output;
      }
      const output = await runTask(task, ctx, workDir, deps, log);
      // Kept until the queue has recorded the completion (see settleCompleted).
      await writeCompletionRecord(task, ctx.attempt, output, records).catch((err: unknown) =>
        log.warn({ err }, 'could not store the completion record'),
      );
      log.info({ ms: Date.now() - started, prefix: output.prefix }, 'task completed');
      return output;
    } catch (err) {
      // Split: the chunk jobs are queued and this run ends; the task goes on (see TaskSteps).
      if (err instanceof StepsQueued) throw err;
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
 * The publisher of run `attempt` of a task. Earlier runs whose process died may have published part of a
 * package: their media goes when the task ends, whichever way.
 */
function publisherFor({
  task,
  attempt,
  prefix,
  workDir,
  deps,
  log,
  signal,
}: {
  task: TaskRecord;
  attempt: number;
  prefix: string;
  /** The run's work directory: the publisher keeps its local copies there. */
  workDir: string;
  deps: Pick<TaskProcessorDeps, 'config' | 'output'>;
  log: Logger;
  signal?: AbortSignal;
}): PackagePublisher {
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

/** Once the queue holds a task's end: its completion record is no longer needed. */
export async function settleCompleted(
  task: TaskRecord,
  deps: Pick<TaskProcessorDeps, 'config' | 'output' | 'logger'>,
): Promise<void> {
  await removeCompletionRecord(task, {
    storage: deps.output,
    outputPrefix: deps.config.outputPrefix,
    logger: deps.logger,
  });
}

/**
 * Takes back what the dead earlier runs of a task published, for a task that ends without running again
 * (cancelled, or out of runs). Failures are logged: the task has ended either way.
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
    await publisherFor({ task, attempt: earlierRuns + 1, prefix, workDir, deps, log }).withdraw();
    await settleCompleted(task, deps);
  } catch (err) {
    log.warn({ err }, "could not take back what the task's earlier runs published");
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * One run's directory for its segments below the prefix: task id, attempt and a random part, so no other run
 * (a retry, a run handed back at shutdown, a task made again under the same idempotency key) writes into it.
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

/** One run of a task: the runner, from the input storage to the output storage, progress to the queue. */
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
  const encryption = resolveRequestEncryption(config, task.request, settings);
  // This run's segments and media playlists go to a directory of their own below the prefix: a package
  // published there before keeps playing, untouched, until this one replaces the top-level files.
  const mediaDir = mediaDirName(task, ctx.attempt);
  const publisher = publisherFor({
    task,
    attempt: ctx.attempt,
    prefix,
    workDir,
    deps,
    log,
    signal: ctx.signal,
  });
  const split = await prepareSplit(task, ctx, workDir, settings, encryption, deps, log);
  const { output, conversion } = await runConversion({
    source: split.source,
    probed: split.probed,
    encode: split.encode,
    destination: storageDestination({
      storage: deps.output,
      settings: config.output,
      prefix,
      mediaDir,
      publisher,
    }),
    settings,
    config,
    tools: deps.tools,
    workDir,
    logger: log,
    signal: ctx.signal,
    encryption,
    onProgress: ({ stage, progress, etaSeconds, earlyOutput }) =>
      ctx.reportProgress(stage, split.progress(progress), {
        etaSeconds,
        ...(earlyOutput ? { earlyOutput } : {}),
      }),
  });
  if (deps.metrics) recordMetrics(deps.metrics, settings, conversion, output.timings ?? {});
  return output;
}

/** Where a split task's chunk jobs sit in its progress; its last run (the stitch) takes the rest. */
const STEPS_SPAN = { stage: 'encode', from: 4, to: 90 } as const;

interface SplitRun {
  source: InputSource;
  probed?: Promise<ProbeResult>;
  /** The stitch of a split task's chunks, or convertInChunks where the queue runs no steps; else convert(). */
  encode?: Encoder;
  /** Maps the runner's 0..100 onto the task's. */
  progress: (p: number) => number;
}

/**
 * The first part of a run: a task whose chunk jobs are done is stitched; otherwise the input is fetched,
 * probed and planned, and one long enough is split (its chunk jobs queued, and this run ends: StepsQueued).
 */
async function prepareSplit(
  task: TaskRecord,
  ctx: TaskRunContext,
  workDir: string,
  settings: EncodeSettings,
  encryption: EncryptionSpec | undefined,
  deps: TaskProcessorDeps,
  log: Logger,
): Promise<SplitRun> {
  const { config } = deps;
  const source = storageInput(deps.input, task.request.videoFilename, {
    ...config.limits,
    subtitles: task.request.subtitles?.map((s) => s.filename),
  });
  const done = ctx.steps?.done;
  if (done) {
    const state = done.state as SplitState;
    log.info({ chunks: state.chunks }, 'stitching the chunks of a split task');
    return {
      source,
      probed: Promise.resolve({ media: state.media }),
      encode: stitchEncoder({ state, outputs: done.outputs, storage: deps.output, encryption }),
      progress: (p) => STEPS_SPAN.to + ((100 - STEPS_SPAN.to) * p) / 100,
    };
  }
  ctx.reportProgress('fetch', 0);
  const input = await source.resolve(workDir, ctx.signal);
  const fetched: InputSource = { resolve: async () => input };
  ctx.reportProgress('probe', 4);
  const tempDir = path.join(workDir, 'tmp');
  await mkdir(tempDir, { recursive: true });
  const probe = await probeSource(input.path, {
    ffprobe: deps.tools.ffprobe,
    ffmpeg: deps.tools.ffmpeg,
    logger: log,
    signal: ctx.signal,
    tempDir,
    packetSeconds: probePacketSeconds(config),
  });
  const { media } = probe;
  checkLimits(media, config.limits);
  const plan = planEncode(media, settings);
  const decision = decideSplit({ config, request: task.request, media, plan });
  const whole: SplitRun = { source: fetched, probed: Promise.resolve(probe), progress: (p) => p };
  if (decision.chunks.length === 0) return whole;
  log.info({ chunks: decision.chunks.length, reason: decision.reason }, 'the input is split');
  if (!ctx.steps) {
    const { chunkSeconds } = splitSettings(config, task.request);
    return {
      ...whole,
      encode: (path_, dir, stageCtx, options) =>
        convertInChunks(path_, dir, stageCtx, { ...options, chunkSeconds, minInputSeconds: 0 }),
    };
  }
  // What convert() refuses before encoding, refused before any chunk job runs.
  await assertComplete(input.path, media.formatName);
  if (encryption) {
    assertEveryStreamHasAKey(encryption, [
      ...plan.renditions,
      ...(plan.audioTracks.length ? ['audio' as const] : []),
    ]);
  }
  const state: SplitState = { media, plan, chunks: decision.chunks.length };
  const order = await chunksInQueueOrder({
    inputPath: input.path,
    media,
    plan,
    chunks: decision.chunks,
    ctx: stageContext({
      tools: deps.tools,
      logger: log,
      signal: ctx.signal,
      watchdog: config.watchdog,
      tempDir,
    }),
  });
  if (!order) return whole;
  return ctx.steps.queue(splitSteps(media, plan, order), state, STEPS_SPAN);
}

function recordMetrics(
  metrics: ServiceMetrics,
  settings: EncodeSettings,
  { media, plan }: ConversionResult,
  timings: Record<string, number>,
): void {
  for (const [stage, seconds] of Object.entries(timings)) {
    if (stage !== 'total') metrics.stageSeconds.observe({ stage }, seconds);
  }
  const fps = plan.frameRateLimit ?? (media.video.frameRate || 30);
  // In H.264-equivalent pixels: a plan with other codecs' encoders measures the same machine speed.
  metrics.encoded(settings.preset, media.duration, timings.encode ?? 0, encodeWorkPixels(plan, fps));
}
