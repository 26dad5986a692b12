import type { MediaInfo } from '../pipeline/media-info.js';
import type { Storage } from '../storage/storage.js';
import { fetchInput } from './fetch-input.js';

/**
 * How a step of a split task reads the input: in place on local storage; otherwise downloaded into the
 * step's work directory.
 */
export async function stepInput(o: {
  storage: Storage;
  key: string;
  media: MediaInfo;
  workDir: string;
  maxInputBytes: number;
  signal?: AbortSignal;
}): Promise<string> {
  const fetched = await fetchInput(o.storage, o.key, o.workDir, {
    maxInputBytes: o.maxInputBytes,
    signal: o.signal,
  });
  return fetched.path;
}
