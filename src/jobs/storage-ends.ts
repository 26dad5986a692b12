import { stat } from 'node:fs/promises';
import { HLS_MASTER_NAME, MANIFEST_NAME } from '../pipeline/package.js';
import { POSTER_NAME } from '../pipeline/poster.js';
import { THUMBNAILS_VTT } from '../pipeline/thumbnails.js';
import { joinKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';
import type { StorageSettings } from '../storage/storage-settings.js';
import { WORK_MARGIN_BYTES } from './disk-space.js';
import { fetchInput, fetchSidecar } from './fetch-input.js';
import type { PackagePublisher } from './publish.js';
import type { InputSource, PackageDestination } from './run-conversion.js';

/** The input storage's object `key`, downloaded into the work directory unless it is readable in place. */
export function storageInput(
  storage: Storage,
  key: string,
  options: { maxInputBytes: number; subtitles?: string[] },
): InputSource {
  return {
    resolve: async (workDir, signal) => ({
      ...(await fetchVideo(workDir, signal)),
      subtitles: await fetchSidecars(storage, options.subtitles ?? [], workDir, signal),
    }),
  };
  function fetchVideo(workDir: string, signal: AbortSignal) {
    return fetchInput(storage, key, workDir, {
      maxInputBytes: options.maxInputBytes,
      // The download and a margin: what the package needs is known once the input is probed and planned.
      reserveBytes: WORK_MARGIN_BYTES,
      signal,
    });
  }
}

/** The subtitle files of a request, fetched into `workDir` (or read in place), by filename. */
export async function fetchSidecars(
  storage: Storage,
  keys: string[],
  workDir: string,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const [index, key] of keys.entries()) {
    files[key] ??= await fetchSidecar(storage, key, workDir, { signal, index });
  }
  return files;
}

/**
 * The output storage under `prefix`, through a task run's publisher: segments in `mediaDir`, the top-level
 * files replaced last (and removed when the new package lacks them).
 */
export function storageDestination({
  storage,
  settings,
  prefix,
  mediaDir,
  publisher,
}: {
  storage: Storage;
  settings: StorageSettings;
  prefix: string;
  mediaDir: string;
  publisher: PackagePublisher;
}): PackageDestination {
  return {
    where: { ...storage.place(prefix), mediaPrefix: joinKey(prefix, mediaDir) },
    mediaDir,
    locate: (file) => {
      const { bucket: _bucket, ...loc } = storage.location(joinKey(prefix, file));
      return loc;
    },
    copiesOnDiskOf: (workDir) => sameDisk(settings, workDir),
    publishEarly: (pkg) => publisher.publish(pkg.dir, pkg.files),
    publish: async (pkg) => {
      // A package without an MPD or a master playlist (FORMATS) removes the one an earlier package left.
      await publisher.publish(pkg.dir, pkg.files, {
        replacing: [MANIFEST_NAME, HLS_MASTER_NAME, POSTER_NAME, THUMBNAILS_VTT],
      });
      // The manifests now name this run's media: an earlier run's goes, and the journal of what was replaced.
      await publisher.settle();
    },
    withdraw: () => publisher.withdraw(),
  };
}

/** Whether the output is local storage on the same file system as the work directory. */
async function sameDisk(output: StorageSettings, workDir: string): Promise<boolean> {
  if (output.kind !== 'local') return false;
  const [a, b] = await Promise.all([stat(output.root).catch(() => undefined), stat(workDir)]);
  return !!a && a.dev === b.dev;
}
