import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { contentTypeFor, isImmutableMedia, isManifest } from '../storage/content-type.js';
import { assertSafeKey, joinKey } from '../storage/keys.js';
import type { PutOptions, Storage } from '../storage/storage.js';

export interface PublishOptions {
  concurrency: number;
  cacheControl: { segments: string; manifests: string };
  logger: Logger;
  signal?: AbortSignal;
}

/**
 * Publishes a task's packages under `prefix` and, when the task does not complete, takes them back without
 * losing what was there before.
 *
 * A package keeps its segments and media playlists in a directory of its own (`mediaDir`, named after the
 * task and attempt), so publishing never overwrites media that an earlier package's manifests reference and
 * that caches keep as immutable; only the top-level files (the DASH manifest, the HLS master, the poster) are
 * replaced in place, last, after everything they point at is there. Before a top-level file is first
 * replaced, the one it replaces is saved in `backupDir`: `withdraw` puts it back (when nobody has replaced it
 * since) and then deletes this task's media, so a failed re-encode leaves the previous package playing as it
 * was. Packages published earlier under the same prefix stay in storage (the task that made them names their
 * `media_prefix`).
 */
export class PackagePublisher {
  /** Keys this publisher uploaded (or began to: a failed upload may still have left an object). */
  private readonly uploaded = new Set<string>();
  /** Top-level keys replaced, with the saved copy of what they held before (null: nothing was there). */
  private readonly previous = new Map<string, string | null>();
  /** Top-level keys replaced, with the local file last uploaded to them (null: removed). */
  private readonly written = new Map<string, string | null>();

  constructor(
    private readonly storage: Storage,
    private readonly prefix: string,
    private readonly backupDir: string,
    private readonly options: PublishOptions,
  ) {}

  /**
   * Copies a package directory to storage: media, then playlists, then the top-level files. Top-level files
   * named in `replacing` that the package lacks are removed last (a package made again with fewer formats
   * must not leave the earlier one's manifest playing the earlier video).
   */
  async publish(pkgDir: string, files: string[], options: { replacing?: string[] } = {}): Promise<void> {
    for (const group of publishOrder(files)) {
      await runLimited(group, this.options.concurrency, async (file) => {
        this.options.signal?.throwIfAborted();
        const key = joinKey(this.prefix, file);
        const src = path.join(pkgDir, file);
        if (!file.includes('/')) {
          await this.saveBeforeReplacing(key);
          this.written.set(key, src);
        } else if (!isManifest(file) && this.uploaded.has(key)) {
          // The full package after an early one: the lowest rung's and the audio's segments are the same
          // again, their init segments too but for the packager's clock in the headers.
          return;
        }
        // A key the storage would refuse is never counted as uploaded: taking the package back deletes the
        // uploaded keys as one batch, which one bad key would fail whole.
        assertSafeKey(key, 'a key of the package');
        this.uploaded.add(key);
        await this.storage.upload(key, src, putOptionsFor(file, this.options));
      });
    }
    for (const file of options.replacing ?? []) {
      if (files.includes(file)) continue;
      this.options.signal?.throwIfAborted();
      const key = joinKey(this.prefix, file);
      await this.saveBeforeReplacing(key);
      if (!this.previous.get(key)) continue;
      this.uploaded.add(key);
      this.written.set(key, null);
      await this.storage.delete([key]);
    }
  }

  /**
   * Takes back everything `publish` put out: the top-level files get their previous contents again (unless
   * another task has replaced them since), then this publisher's media is deleted. Failures are logged, not
   * thrown: the caller is handling the error that made it withdraw. When a top-level file could not be put
   * back, the media it points at is kept.
   */
  async withdraw(): Promise<void> {
    if (this.uploaded.size === 0) return;
    const log = this.options.logger;
    let restored = true;
    // Manifests first, so that nothing points at media about to be deleted.
    const replaced = [...this.written.keys()].sort((a, b) => Number(isManifest(b)) - Number(isManifest(a)));
    for (const key of replaced) {
      try {
        await this.restore(key);
      } catch (err) {
        restored = false;
        log.error({ err, key }, 'could not put back the file a withdrawn package had replaced');
      }
    }
    if (!restored) return;
    const own = [...this.uploaded].filter((k) => !this.written.has(k));
    await this.storage
      .delete(own)
      .catch((err: unknown) =>
        log.error({ err, keys: own.length }, 'could not remove the media of a withdrawn package'),
      );
  }

  /**
   * Deletes the media directories below the prefix whose names start with one of `stems` (an earlier attempt
   * of the task, whose process died after publishing part of a package). Failures are logged: the package
   * published is complete without it.
   */
  async removeMediaDirs(stems: string[]): Promise<void> {
    if (stems.length === 0) return;
    try {
      const below = `${this.prefix}/`;
      // Keys in a directory (not the top-level files) whose name starts with one of the stems.
      const keys = (await this.storage.list(below)).filter((key) => {
        const [dir, ...rest] = key.slice(below.length).split('/');
        return rest.length > 0 && stems.some((s) => dir!.startsWith(s));
      });
      if (keys.length === 0) return;
      await this.storage.delete(keys);
      this.options.logger.info({ files: keys.length }, "removed an earlier attempt's media");
    } catch (err) {
      this.options.logger.warn({ err }, "could not remove an earlier attempt's media");
    }
  }

  private async saveBeforeReplacing(key: string): Promise<void> {
    if (this.previous.has(key)) return;
    let saved: string | null = null;
    if (await this.storage.head(key)) {
      await mkdir(this.backupDir, { recursive: true });
      saved = path.join(this.backupDir, `${this.previous.size}-${path.posix.basename(key)}`);
      await this.storage.download(key, saved, this.options.signal);
    }
    this.previous.set(key, saved);
  }

  private async restore(key: string): Promise<void> {
    const ours = this.written.get(key)!;
    // Replaced again by another task since: what is there now is not ours to take back.
    if (!(await this.stillHolds(key, ours))) return;
    const saved = this.previous.get(key);
    const file = path.posix.basename(key);
    // Not under the task's signal: a cancelled task must still be able to put things back.
    if (saved)
      await this.storage.upload(key, saved, putOptionsFor(file, { ...this.options, signal: undefined }));
    else await this.storage.delete([key]);
  }

  /** Whether the object at `key` is missing or holds exactly the bytes of `file` (null: is missing). */
  private async stillHolds(key: string, file: string | null): Promise<boolean> {
    const info = await this.storage.head(key);
    if (!info) return true;
    if (file === null) return false;
    const mine = await readFile(file);
    if (info.size !== mine.length) return false;
    const now = path.join(this.backupDir, `now-${path.posix.basename(key)}`);
    await mkdir(this.backupDir, { recursive: true });
    await this.storage.download(key, now);
    try {
      return mine.equals(await readFile(now));
    } finally {
      await rm(now, { force: true });
    }
  }
}

function putOptionsFor(file: string, options: Pick<PublishOptions, 'cacheControl' | 'signal'>): PutOptions {
  return {
    contentType: contentTypeFor(file),
    cacheControl: isImmutableMedia(file) ? options.cacheControl.segments : options.cacheControl.manifests,
    signal: options.signal,
  };
}

/**
 * A package's files in the order they may be published: media, then playlists, then the top-level files
 * (the poster, then the HLS master and the DASH manifest), so a reader never finds a manifest whose segments
 * are missing.
 */
export function publishOrder(files: string[]): string[][] {
  const nested = files.filter((f) => f.includes('/'));
  const top = files.filter((f) => !f.includes('/'));
  return [
    nested.filter((f) => !isManifest(f)),
    nested.filter((f) => isManifest(f)),
    top.filter((f) => !isManifest(f)),
    top.filter((f) => isManifest(f)),
  ].filter((group) => group.length > 0);
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
