import { TaskFailure } from '../domain/failures.js';
import { assertSafeKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import { fetchInput } from './fetch-input.js';

/** How long a chunk job's presigned input URL is valid: longer than any chunk's encode. */
const INPUT_URL_SECONDS = 6 * 3600;

/**
 * How a chunk job of a split task reads the input: in place on local storage; from S3 through a presigned
 * URL that FFmpeg reads in byte ranges (only the chunk's part and the index: split inputs are MP4/MOV or
 * Matroska/WebM, which seek by their index); downloaded into the job's work directory otherwise.
 */
export async function stepInput(o: {
  storage: Storage;
  key: string;
  workDir: string;
  maxInputBytes: number;
  signal?: AbortSignal;
}): Promise<string> {
  if (!o.storage.localFiles && o.storage.createDownloadUrl) {
    try {
      assertSafeKey(o.key);
    } catch (err) {
      throw new TaskFailure('invalid_input', (err as Error).message);
    }
    const info = await o.storage.head(o.key);
    if (!info) throw new TaskFailure('input_not_found', 'input not found');
    return o.storage.createDownloadUrl(o.key, INPUT_URL_SECONDS);
  }
  const fetched = await fetchInput(o.storage, o.key, o.workDir, {
    maxInputBytes: o.maxInputBytes,
    signal: o.signal,
  });
  return fetched.path;
}
