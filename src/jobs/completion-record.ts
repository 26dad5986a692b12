import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { fromWire, toWire } from '../domain/schemas/wire.js';
import type { TaskOutput, TaskRecord, WireTaskOutput } from '../domain/task.js';
import { joinKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';

/**
 * Left beside a published package until the queue records the task completed, so that a next run after a lost
 * completion (Redis away past the lease, a kill) adopts the package instead of redoing it.
 */
interface CompletionRecord {
  taskId: string;
  attempt: number;
  /** In wire casing, as records written before the domain was camelCase. */
  output: WireTaskOutput;
  /** Top-level key → SHA-256 of what the run published there. */
  digests: Record<string, string>;
  /** How many files the run's media directory holds. */
  mediaFiles: number;
}

export interface CompletionRecordOptions {
  storage: Storage;
  /** OUTPUT_PREFIX: the records go below it, beside the packages. */
  outputPrefix: string;
  /** The run's work directory, for the files read back. */
  workDir: string;
  logger: Logger;
}

function recordKey(outputPrefix: string, taskId: string): string {
  return joinKey(outputPrefix, '.dvc-completed', `${taskId.replace(/[^A-Za-z0-9_-]/g, '_')}.json`);
}

function topLevelKeys(output: TaskOutput): string[] {
  return [output.manifest?.key, output.hlsMaster?.key, output.poster.key].filter((k): k is string => !!k);
}

async function digestOf(storage: Storage, key: string, workDir: string): Promise<string | undefined> {
  if (!(await storage.head(key))) return undefined;
  const local = path.join(workDir, `completion-${randomName()}`);
  try {
    await storage.download(key, local);
    return createHash('sha256')
      .update(await readFile(local))
      .digest('hex');
  } finally {
    await rm(local, { force: true });
  }
}

function randomName(): string {
  return randomBytes(4).toString('hex');
}

async function mediaFileCount(storage: Storage, output: TaskOutput): Promise<number> {
  return output.mediaPrefix ? (await storage.list(`${output.mediaPrefix}/`)).length : 0;
}

/** Stores the record of run `attempt`, whose package `output` describes, as published now. */
export async function writeCompletionRecord(
  task: Pick<TaskRecord, 'id'>,
  attempt: number,
  output: TaskOutput,
  options: CompletionRecordOptions,
): Promise<void> {
  const { storage, workDir } = options;
  const digests: Record<string, string> = {};
  for (const key of topLevelKeys(output)) {
    const digest = await digestOf(storage, key, workDir);
    if (digest) digests[key] = digest;
  }
  const record: CompletionRecord = {
    taskId: task.id,
    attempt,
    output: toWire<WireTaskOutput>(output),
    digests,
    mediaFiles: await mediaFileCount(storage, output),
  };
  const local = path.join(workDir, 'completion.json');
  await writeFile(local, JSON.stringify(record));
  await storage.upload(recordKey(options.outputPrefix, task.id), local, {
    contentType: 'application/json',
    cacheControl: 'no-store',
  });
}

/**
 * The report of a package an earlier run of the task published, if it is still what the top-level files hold
 * and its media is all there; undefined otherwise (a record that no longer holds is removed).
 */
export async function adoptablePackage(
  task: Pick<TaskRecord, 'id'>,
  options: CompletionRecordOptions,
): Promise<{ output: TaskOutput; attempt: number } | undefined> {
  const { storage, workDir, logger } = options;
  const key = recordKey(options.outputPrefix, task.id);
  if (!(await storage.head(key))) return undefined;
  const local = path.join(workDir, 'completion.json');
  await storage.download(key, local);
  const record = JSON.parse(await readFile(local, 'utf8')) as CompletionRecord;
  const output = fromWire(record.output);
  let intact = record.taskId === task.id;
  for (const file of topLevelKeys(output)) {
    if (!intact) break;
    intact = (await digestOf(storage, file, workDir)) === record.digests[file];
  }
  if (intact) intact = (await mediaFileCount(storage, output)) === record.mediaFiles;
  if (intact) return { output, attempt: record.attempt };
  logger.info('an earlier run published this task, but its package was replaced since: running again');
  await storage.delete([key]);
  return undefined;
}

/** Removes the record once the queue holds the task's end. Failures are logged: the record is small. */
export async function removeCompletionRecord(
  task: Pick<TaskRecord, 'id'>,
  options: Pick<CompletionRecordOptions, 'storage' | 'outputPrefix' | 'logger'>,
): Promise<void> {
  const key = recordKey(options.outputPrefix, task.id);
  try {
    if (await options.storage.head(key)) await options.storage.delete([key]);
  } catch (err) {
    options.logger.warn({ err, taskId: task.id }, 'could not remove the completion record');
  }
}
