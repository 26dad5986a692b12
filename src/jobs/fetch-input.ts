import path from 'node:path';
import { TaskFailure } from '../domain/failures.js';
import { assertSafeKey } from '../storage/keys.js';
import type { ObjectInfo, Storage } from '../storage/storage.js';
import { ensureFreeSpace } from './disk-space.js';
import { MAX_SUBTITLE_BYTES } from '../pipeline/subtitles.js';

export interface FetchOptions {
  maxInputBytes: number;
  /** Free space wanted in `workDir` besides the download itself (the plan's own check comes once it is probed). */
  reserveBytes?: number;
  signal?: AbortSignal;
}

export interface FetchedInput {
  /** A local file to read: the object in place on local storage, a download in `workDir` otherwise. */
  path: string;
  size: number;
  downloaded: boolean;
}

/** The input object under `key`, after the key's check: `invalid_input` or `input_not_found` otherwise. */
export async function headInput(storage: Storage, key: string): Promise<ObjectInfo> {
  try {
    assertSafeKey(key);
  } catch (err) {
    throw new TaskFailure('invalid_input', (err as Error).message);
  }
  const info = await storage.head(key);
  if (!info) throw new TaskFailure('input_not_found', 'input not found');
  return info;
}

/**
 * Makes an input of the input storage readable as a local file, after the checks every reader of an input
 * needs: a safe key, an object that exists, is not empty, is within the size limit, and fits on disk.
 */
export async function fetchInput(
  storage: Storage,
  key: string,
  workDir: string,
  options: FetchOptions,
): Promise<FetchedInput> {
  const info = await headInput(storage, key);
  if (info.size === 0) throw new TaskFailure('not_a_video', 'the input file is empty');
  if (info.size > options.maxInputBytes) {
    throw new TaskFailure(
      'limit_exceeded',
      `the input is ${info.size} bytes, over the limit of ${options.maxInputBytes} bytes`,
    );
  }
  const local = storage.localFiles?.pathOf(key);
  await ensureFreeSpace(workDir, (local ? 0 : info.size) + (options.reserveBytes ?? 0));
  if (local) return { path: local, size: info.size, downloaded: false };
  const dest = path.join(workDir, `input${path.extname(key).slice(0, 10)}`);
  // The version whose size was checked, and no other (a re-upload in between would escape the limit).
  await storage.download(key, dest, options.signal, { etag: info.etag });
  options.signal?.throwIfAborted();
  return { path: dest, size: info.size, downloaded: true };
}

/**
 * Makes a subtitle file of the input storage (a request's `subtitles[].filename`) readable as a local file,
 * under the rules of the input's key: a missing one is `input_not_found` naming it, a large one is refused.
 */
export async function fetchSidecar(
  storage: Storage,
  key: string,
  workDir: string,
  options: { signal?: AbortSignal; index: number },
): Promise<string> {
  try {
    assertSafeKey(key, 'a subtitles filename');
  } catch (err) {
    throw new TaskFailure('invalid_input', (err as Error).message);
  }
  const info = await storage.head(key);
  if (!info) throw new TaskFailure('input_not_found', `subtitle file not found: "${key}"`);
  if (info.size > MAX_SUBTITLE_BYTES) {
    throw new TaskFailure(
      'invalid_subtitles',
      `the subtitle file "${key}" cannot be used: it is larger than ${MAX_SUBTITLE_BYTES / 1024 / 1024} MB`,
    );
  }
  const local = storage.localFiles?.pathOf(key);
  if (local) return local;
  const dest = path.join(workDir, `subtitles-${options.index}.txt`);
  await storage.download(key, dest, options.signal, { etag: info.etag });
  options.signal?.throwIfAborted();
  return dest;
}
