import path from 'node:path';
import type { Logger } from 'pino';
import { contentTypeFor, isManifest } from '../storage/content-type.js';
import { joinKey } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';

export interface PublishOptions {
  concurrency: number;
  cacheControl: { segments: string; manifests: string };
  logger: Logger;
  signal?: AbortSignal;
}

/**
 * Copies a package directory to the output storage under `prefix`. Media first (with bounded concurrency),
 * manifests and playlists last, the DASH manifest and HLS master at the very end: a reader never finds a
 * manifest whose segments are missing. When anything fails, whatever this call uploaded is deleted again.
 */
export async function publishPackage(
  storage: Storage,
  pkgDir: string,
  files: string[],
  prefix: string,
  options: PublishOptions,
): Promise<void> {
  const uploaded: string[] = [];
  const put = async (file: string) => {
    options.signal?.throwIfAborted();
    const key = joinKey(prefix, file);
    const manifest = isManifest(file);
    const src = path.join(pkgDir, file);
    // Counted before it starts: an upload that fails or is cancelled midway may still have left an object.
    uploaded.push(key);
    await storage.upload(key, src, {
      contentType: contentTypeFor(file),
      cacheControl: manifest ? options.cacheControl.manifests : options.cacheControl.segments,
      signal: options.signal,
    });
  };
  try {
    for (const group of publishOrder(files)) {
      await runLimited(group, options.concurrency, put);
    }
  } catch (err) {
    options.logger.warn(
      { prefix, uploaded: uploaded.length },
      'publishing failed; removing what was uploaded',
    );
    await unpublish(storage, uploaded, options.logger, 'could not remove a partly published package');
    throw err;
  }
}

/**
 * A package's files in the order they may be published: media, then playlists, then the DASH manifest and
 * HLS master, so a reader never finds a manifest whose segments are missing.
 */
export function publishOrder(files: string[]): string[][] {
  return [
    files.filter((f) => !isManifest(f)),
    files.filter((f) => isManifest(f) && f.includes('/')),
    files.filter((f) => isManifest(f) && !f.includes('/')),
  ];
}

/**
 * Deletes published keys, manifests first so nothing points at segments being deleted. A failure is logged
 * with `failure`, not thrown: the caller is already handling the error that made it unpublish.
 */
export async function unpublish(storage: Storage, keys: string[], logger: Logger, failure: string) {
  const ordered = [...keys].sort((a, b) => Number(isManifest(b)) - Number(isManifest(a)));
  await storage.delete(ordered).catch((err: unknown) => logger.error({ err, keys: keys.length }, failure));
}

/** Runs `fn` over the items with at most `limit` at once; waits for all, then rejects with the first error. */
export async function runLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  });
  const results = await Promise.allSettled(lanes);
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}
