import type { Storage } from '../storage/storage.js';
import { fetchInput, headInput } from './fetch-input.js';
import type { HostInputs } from './host-inputs.js';

/** How long a chunk job's presigned input URL is valid: longer than any chunk's encode. */
const INPUT_URL_SECONDS = 6 * 3600;

/**
 * How a chunk job of a split task reads the input: in place on local storage; from S3 through a presigned
 * URL that FFmpeg reads in byte ranges when the container seeks by its index (MP4/MOV, Matroska/WebM: only the
 * chunk's part and the index are read); otherwise from the copy this host downloaded once for all its jobs of
 * the task (MPEG-TS, whose seeks are searches over the whole file).
 */
export async function stepInput(o: {
  storage: Storage;
  taskId: string;
  key: string;
  /** Whether the container has an index to seek by (hasSeekIndex). */
  indexed: boolean;
  hostInputs: HostInputs;
  workDir: string;
  maxInputBytes: number;
  signal?: AbortSignal;
}): Promise<string> {
  if (o.storage.localFiles) {
    const fetched = await fetchInput(o.storage, o.key, o.workDir, {
      maxInputBytes: o.maxInputBytes,
      signal: o.signal,
    });
    return fetched.path;
  }
  if (o.indexed && o.storage.createDownloadUrl) {
    await headInput(o.storage, o.key);
    return o.storage.createDownloadUrl(o.key, INPUT_URL_SECONDS);
  }
  return o.hostInputs.fetch(o);
}
