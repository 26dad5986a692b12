import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { TaskFailure } from '../domain/failures.js';
import type { TaskRecord } from '../domain/task.js';
import type { ServiceMetrics } from '../metrics/metrics.js';
import type { ConvertStage } from '../pipeline/convert.js';
import type { MediaInfo } from '../pipeline/media-info.js';
import type { EncodePlan } from '../pipeline/plan.js';
import type { MediaTools } from '../pipeline/tools.js';
import { encodeVideoChunk, encodeWholeAudio } from '../pipeline/chunks/encode-chunk.js';
import { hasSeekIndex, type ChunkSpan } from '../pipeline/chunks/plan-chunks.js';
import { stitchAndPackage, type ChunkImages, type StitchStage } from '../pipeline/chunks/stitch.js';
import type { StepHandler, StepSpec } from '../queue/task-queue.js';
import { joinKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import type { EncryptionSpec } from '../domain/encryption.js';
import { stageContext, type JobSettings } from './job-settings.js';
import { runLimited } from './publish.js';
import type { Encoder } from './run-conversion.js';
import { HostInputs } from './host-inputs.js';
import { stepInput } from './step-input.js';
import { ownedWorkDirName } from './work-dirs.js';

/** What every step of a split task carries: the probe and the plan its first run made, the same for all. */
interface StepBase {
  media: MediaInfo;
  plan: EncodePlan;
}

export type SplitStepData = StepBase & ({ kind: 'video'; chunk: ChunkSpan } | { kind: 'audio' });

/**
 * A step's output: the keys of its files in the output storage, below the task's work prefix, by rendition
 * (a video chunk) or by audio track (the audio).
 */
export interface SplitStepOutput {
  files: Record<string, string>;
  /** A video chunk's first frame time (see VideoChunkResult). */
  firstFrame?: number;
  /** A video chunk's seek-bar thumbnails by slot, and its poster candidate (see VideoChunkResult). */
  thumbnails?: Record<string, string>;
  poster?: string;
}

/** What a split task keeps for its last run. */
export interface SplitState extends StepBase {
  chunks: number;
}

export interface StepDeps {
  config: Pick<JobSettings, 'workDir' | 'outputPrefix' | 'limits' | 'watchdog'>;
  tools: MediaTools;
  input: Storage;
  output: Storage;
  logger: Logger;
  metrics?: ServiceMetrics;
  /** Inputs downloaded once for this host's chunk jobs (one per process; made here unless given). */
  hostInputs?: HostInputs;
}

/** Where a split task's chunk outputs wait for its stitch: a private prefix of the output storage. */
export function chunkWorkPrefix(outputPrefix: string, taskId: string): string {
  return joinKey(outputPrefix, '.dvc-chunks', taskId.replace(/[^A-Za-z0-9_-]/g, '_'));
}

/** The steps of a split, in queue order: the audio of the whole input once, then one per video chunk in `chunks`' order. */
export function splitSteps(media: MediaInfo, plan: EncodePlan, chunks: ChunkSpan[]): StepSpec[] {
  const steps: StepSpec[] = chunks.map((chunk) => ({
    name: `chunk-${chunk.index}`,
    data: { kind: 'video', chunk, media, plan } satisfies SplitStepData,
  }));
  // First: the audio is short beside a chunk, and taken last it would be a straggler the stitch waits for.
  if (plan.audioTracks.length)
    steps.unshift({ name: 'audio', data: { kind: 'audio', media, plan } satisfies SplitStepData });
  return steps;
}

// A chunk's thumbnails are a few KB each, hundreds per task: one at a time, S3's round trips would add up.
const IMAGE_TRANSFERS = 8;

/**
 * The queue's step handler: encodes one chunk (or the audio) of a split task in a private work directory,
 * and stores what it made in the output storage under the task's work prefix, for the stitch.
 */
export function createStepProcessor(deps: StepDeps): StepHandler {
  const hostInputs = deps.hostInputs ?? new HostInputs(deps.config.workDir, deps.logger);
  return async (task, step, ctx) => {
    const data = step.data as SplitStepData;
    const log = deps.logger.child({ taskId: task.id, step: step.name, attempt: ctx.attempt });
    const workDir = path.join(deps.config.workDir, ownedWorkDirName(`${task.id}-${step.name}`));
    await rm(workDir, { recursive: true, force: true });
    await mkdir(path.join(workDir, 'tmp'), { recursive: true });
    const started = Date.now();
    log.info('step started');
    try {
      const stageCtx = stageContext({
        tools: deps.tools,
        logger: log,
        signal: ctx.signal,
        watchdog: deps.config.watchdog,
        tempDir: path.join(workDir, 'tmp'),
      });
      const input = await stepInput({
        storage: deps.input,
        taskId: task.id,
        key: task.request.videoFilename,
        indexed: hasSeekIndex(data.media.formatName),
        hostInputs,
        workDir,
        maxInputBytes: deps.config.limits.maxInputBytes,
        signal: ctx.signal,
      });
      const prefix = joinKey(chunkWorkPrefix(deps.config.outputPrefix, task.id), step.name);
      const store = async (file: string, name = path.basename(file), contentType = 'video/mp4') => {
        const key = joinKey(prefix, name);
        await deps.output.upload(key, file, { contentType, signal: ctx.signal });
        return key;
      };
      let output: SplitStepOutput;
      if (data.kind === 'video') {
        const chunk = await encodeVideoChunk({
          input,
          media: data.media,
          plan: data.plan,
          chunk: data.chunk,
          outDir: path.join(workDir, 'out'),
          ctx: stageCtx,
          onProgress: ctx.reportProgress,
        });
        const keys: Record<string, string> = {};
        for (const [name, file] of Object.entries(chunk.files)) keys[name] = await store(file);
        output = { files: keys, ...(chunk.firstFrame !== undefined ? { firstFrame: chunk.firstFrame } : {}) };
        // The images beside the chunk's video, for the stitch to tile and pick from (a few KB each).
        if (chunk.thumbnails) {
          const stored: Record<string, string> = {};
          await runLimited(Object.entries(chunk.thumbnails), IMAGE_TRANSFERS, async ([slot, file]) => {
            stored[slot] = await store(file, `thumbnail-${slot}.jpg`, 'image/jpeg');
          });
          output.thumbnails = stored;
        }
        if (chunk.poster) output.poster = await store(chunk.poster, 'poster.jpg', 'image/jpeg');
      } else {
        const audio = await encodeWholeAudio({
          input,
          media: data.media,
          plan: data.plan,
          outFile: path.join(workDir, 'out', 'audio.mp4'),
          ctx: stageCtx,
          onProgress: ctx.reportProgress,
        });
        const keys: Record<string, string> = {};
        for (const [name, file] of Object.entries(audio?.files ?? {})) keys[name] = await store(file);
        output = { files: keys };
      }
      deps.metrics?.chunkJobs.inc({ kind: data.kind, outcome: 'completed' });
      log.info({ ms: Date.now() - started }, 'step completed');
      return output;
    } catch (caught) {
      const err = await inputGoneInstead(caught, deps.input, task.request.videoFilename, ctx.signal);
      deps.metrics?.chunkJobs.inc({
        kind: data.kind,
        outcome: ctx.signal.aborted ? 'stopped' : 'failed',
      });
      log.warn(
        { ms: Date.now() - started, err: err instanceof TaskFailure ? err.message : err },
        'step failed',
      );
      throw err;
    } finally {
      await rm(workDir, { recursive: true, force: true }).catch((err: unknown) =>
        log.error({ err }, 'could not remove the work directory'),
      );
    }
  };
}

/** A step that failed because its input was removed from storage meanwhile fails as `input_not_found`. */
async function inputGoneInstead(
  err: unknown,
  storage: Storage,
  key: string,
  signal: AbortSignal,
): Promise<unknown> {
  if (signal.aborted || !(err instanceof TaskFailure) || err.code !== 'encode_failed') return err;
  const info = await storage.head(key).catch(() => 'unknown' as const);
  return info ? err : new TaskFailure('input_not_found', 'input not found', { cause: err });
}

/**
 * The encoder of a split task's last run: fetches its chunks' and audio's files from the output storage and
 * joins and packages them (stitchAndPackage) as convert() would have made the package in one run.
 */
export function stitchEncoder({
  state,
  outputs,
  storage,
  encryption,
}: {
  state: SplitState;
  outputs: Record<string, unknown>;
  storage: Storage;
  encryption?: EncryptionSpec;
}): Encoder {
  return async (inputPath, workDir, ctx, options) => {
    const { media, plan } = state;
    const report = (stage: ConvertStage, f: number) => options.onProgress?.(stage, f);
    report('probe', 0);
    await options.onPlan?.(media, plan);
    const partsDir = path.join(workDir, 'chunks');
    await mkdir(partsDir, { recursive: true });
    const fetch = async (key: string) => {
      const dest = path.join(partsDir, key.split('/').slice(-2).join('-'));
      await storage.download(key, dest, ctx.signal);
      return dest;
    };
    const chunkFiles: Record<string, string>[] = [];
    const chunkStarts: Array<number | undefined> = [];
    const chunkImages: ChunkImages[] = [];
    for (let i = 0; i < state.chunks; i++) {
      const out = outputs[`chunk-${i}`] as SplitStepOutput | undefined;
      if (!out?.files) throw new TaskFailure('internal', `chunk ${i} of the split left no files`);
      const local: Record<string, string> = {};
      for (const [name, key] of Object.entries(out.files)) local[name] = await fetch(key);
      chunkFiles.push(local);
      chunkStarts.push(out.firstFrame);
      const images: ChunkImages = {};
      if (out.thumbnails) {
        const fetched: Record<number, string> = {};
        await runLimited(Object.entries(out.thumbnails), IMAGE_TRANSFERS, async ([slot, key]) => {
          fetched[Number(slot)] = await fetch(key);
        });
        images.thumbnails = fetched;
      }
      if (out.poster) images.poster = await fetch(out.poster);
      chunkImages.push(images);
      report('encode', 0.5 * ((i + 1) / state.chunks));
    }
    const audioFiles: Record<string, string> = {};
    const audio = (outputs.audio as SplitStepOutput | undefined)?.files ?? {};
    for (const [name, key] of Object.entries(audio)) audioFiles[name] = await fetch(key);
    const stage: Record<StitchStage, ConvertStage> = { join: 'encode', package: 'package', poster: 'poster' };
    return stitchAndPackage({
      inputPath,
      media,
      plan,
      chunkFiles,
      chunkStarts,
      // Chunks of a version that made no images (a task split before an upgrade): the stitch decodes again.
      ...(chunkImages.some((c) => c.thumbnails || c.poster) || !plan.thumbnails ? { chunkImages } : {}),
      audioFiles,
      subtitleFiles: options.subtitleFiles,
      workDir,
      mediaDir: options.mediaDir,
      encryption,
      ctx,
      onProgress: (s, f) => report(stage[s], s === 'join' ? 0.5 + 0.5 * f : f),
    });
  };
}

/**
 * Removes a split task's chunk outputs (when it ends, whichever way), and this host's copy of its input;
 * other hosts' copies expire (sweepHostInputs). Failures are logged.
 */
export async function removeChunkWork(
  task: Pick<TaskRecord, 'id'>,
  deps: {
    config: Pick<JobSettings, 'outputPrefix'>;
    output: Storage;
    logger: Logger;
    hostInputs?: HostInputs;
  },
): Promise<void> {
  await deps.hostInputs?.removeTask(task.id);
  try {
    const keys = await deps.output.list(`${chunkWorkPrefix(deps.config.outputPrefix, task.id)}/`);
    if (keys.length) await deps.output.delete(keys);
  } catch (err) {
    deps.logger.warn({ taskId: task.id, err }, "could not remove a split task's chunk outputs");
  }
}
