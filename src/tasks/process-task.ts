import { mkdir, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { TaskFailure } from '../errors.js';
import { convert, type ConvertStage } from '../pipeline/convert.js';
import type { MediaTools } from '../pipeline/tools.js';
import type { TaskOutput, TaskRecord } from '../queue/task.js';
import type { TaskHandler, TaskRunContext } from '../queue/task-queue.js';
import { assertSafeKey, joinKey, outputPrefixFor } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { publishPackage } from './publish.js';

export interface TaskProcessorDeps {
  config: Config;
  tools: MediaTools;
  input: Storage;
  output: Storage;
  logger: Logger;
}

/** Where each step of a task sits in its 0..100 progress. */
const span = { fetch: [0, 4], convert: [4, 96], publish: [96, 100] } as const;

/**
 * The job layer: fetches the input, runs the pipeline in a private work directory, publishes the package and
 * describes it. The work directory is removed whatever happens.
 */
export function createTaskProcessor(deps: TaskProcessorDeps): TaskHandler {
  return async (task, ctx) => {
    const log = deps.logger.child({ taskId: task.id, attempt: ctx.attempt });
    const workDir = path.join(deps.config.workDir, workDirName(task));
    await mkdir(workDir, { recursive: true });
    const started = Date.now();
    try {
      const output = await runTask(task, ctx, workDir, deps, log);
      log.info({ ms: Date.now() - started, prefix: output.prefix }, 'task completed');
      return output;
    } catch (err) {
      log.warn(
        { ms: Date.now() - started, err: err instanceof TaskFailure ? err.message : err },
        'task run failed',
      );
      throw err;
    } finally {
      await rm(workDir, { recursive: true, force: true }).catch((err: unknown) =>
        log.error({ err }, 'could not remove the work directory'),
      );
    }
  };
}

/** Work directories carry the process id, so a start-up sweep can tell which ones belong to dead processes. */
export function workDirName(task: Pick<TaskRecord, 'id'>): string {
  return `${process.pid}-${task.id}`;
}

async function runTask(
  task: TaskRecord,
  ctx: TaskRunContext,
  workDir: string,
  deps: TaskProcessorDeps,
  log: Logger,
): Promise<TaskOutput> {
  const { config } = deps;
  const key = task.request.video_filename;
  try {
    assertSafeKey(key);
  } catch (err) {
    throw new TaskFailure('invalid_input', (err as Error).message);
  }
  const at = (step: keyof typeof span, f: number) => span[step][0] + (span[step][1] - span[step][0]) * f;

  ctx.reportProgress('fetch', at('fetch', 0));
  const info = await deps.input.head(key);
  if (!info) throw new TaskFailure('input_not_found', 'input not found');
  if (info.size === 0) throw new TaskFailure('not_a_video', 'the input file is empty');
  if (info.size > config.limits.maxInputBytes) {
    throw new TaskFailure(
      'limit_exceeded',
      `the input is ${info.size} bytes, over the limit of ${config.limits.maxInputBytes} bytes`,
    );
  }
  let inputPath = deps.input.localPath(key);
  // Room for the download, the encoded streams and the package (each at most about the input's size).
  await ensureFreeSpace(workDir, (inputPath ? 0 : info.size) + 2 * info.size + 64 * 1024 * 1024);
  if (!inputPath) {
    inputPath = path.join(workDir, `input${path.extname(key).slice(0, 10)}`);
    await deps.input.download(key, inputPath, ctx.signal);
  }
  ctx.signal.throwIfAborted();

  const result = await convert(
    inputPath,
    workDir,
    {
      tools: deps.tools,
      logger: log,
      signal: ctx.signal,
      idleTimeoutMs: config.watchdog.idleTimeoutMs,
      maxRuntimeMs: config.watchdog.maxRuntimeMs,
    },
    {
      settings: config.encode,
      limits: config.limits,
      onProgress: (stage: ConvertStage, f) => ctx.reportProgress(stage, at('convert', f)),
    },
  );

  ctx.reportProgress('publish', at('publish', 0));
  const prefix = outputPrefixFor(key, config.outputPrefix);
  await publishPackage(deps.output, result.package.dir, result.package.files, prefix, {
    concurrency: config.uploadConcurrency,
    cacheControl: config.cacheControl,
    logger: log,
    signal: ctx.signal,
  });
  let bytes = 0;
  for (const f of result.package.files) bytes += (await stat(path.join(result.package.dir, f))).size;

  const locate = (file: string) => {
    const { bucket: _bucket, ...loc } = deps.output.location(joinKey(prefix, file));
    return loc;
  };
  const bucket = deps.output.location(prefix).bucket;
  return {
    storage: deps.output.kind,
    ...(bucket ? { bucket } : {}),
    prefix,
    manifest: result.package.dashManifest ? locate(result.package.dashManifest) : undefined,
    hls_master: result.package.hlsMaster ? locate(result.package.hlsMaster) : undefined,
    poster: locate(result.poster),
    renditions: result.plan.renditions.map((r) => ({
      name: r.name,
      width: r.width,
      height: r.height,
      bitrate: r.bitrate,
    })),
    audio: !!result.plan.audio,
    duration: Math.round(result.media.duration * 1000) / 1000,
    files: result.package.files.length,
    bytes,
  };
}

async function ensureFreeSpace(dir: string, needed: number): Promise<void> {
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free < needed) {
    throw new TaskFailure(
      'disk_full',
      `not enough free disk space for this input: ${Math.round(needed / 1e6)} MB needed, ${Math.round(free / 1e6)} MB free`,
    );
  }
}
