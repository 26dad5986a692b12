import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { contentTypeFor, isImmutableMedia, isManifest } from './content-type.js';
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
 * losing what was there before (docs/design-notes.md, "Publishing").
 */
export class PackagePublisher {
  /** Keys this publisher uploaded (or began to: a failed upload may still have left an object). */
  private readonly uploaded = new Set<string>();
  private readonly journalDir: string;

  constructor(
    private readonly storage: Storage,
    private readonly prefix: string,
    private readonly backupDir: string,
    private readonly options: PublishOptions & {
      /** The task's id: names its journal directory. */
      taskId: string;
      /** Which run of the task this is (1, 2…): a later run's files are never taken back by an earlier one. */
      attempt: number;
      /** What the media directories of the task's earlier runs start with (removed when it ends). */
      earlierMedia?: string[];
    },
  ) {
    this.journalDir = joinKey(
      prefix,
      `${JOURNAL_DIR_PREFIX}${options.taskId.replace(/[^A-Za-z0-9_-]/g, '_')}`,
    );
  }

  /**
   * Copies a package to storage in publishOrder; top-level files in `replacing` that it lacks are removed
   * last, so a package made again with fewer formats leaves no manifest playing the earlier video.
   */
  async publish(pkgDir: string, files: string[], options: { replacing?: string[] } = {}): Promise<void> {
    const groups = publishOrder(files);
    const topLevel = (group: string[]) => !group[0]!.includes('/');
    for (const group of groups.filter((g) => !topLevel(g))) await this.upload(pkgDir, group);
    const missing = (options.replacing ?? []).filter((file) => !files.includes(file));
    // Before the top-level files change, the journal says what they were and what they will hold.
    await this.record([
      ...files.filter((file) => !file.includes('/')).map((file) => ({ file, src: path.join(pkgDir, file) })),
      ...missing.map((file) => ({ file, src: null })),
    ]);
    for (const group of groups.filter(topLevel)) await this.upload(pkgDir, group);
    for (const file of missing) {
      this.options.signal?.throwIfAborted();
      const key = joinKey(this.prefix, file);
      if (!(await this.storage.head(key))) continue;
      this.uploaded.add(key);
      await this.storage.delete([key]);
    }
  }

  /** Uploads one group of `publishOrder`, a few files at once. */
  private async upload(pkgDir: string, group: string[]): Promise<void> {
    await runLimited(group, this.options.concurrency, async (file) => {
      this.options.signal?.throwIfAborted();
      const key = joinKey(this.prefix, file);
      if (file.includes('/') && !isManifest(file) && this.uploaded.has(key)) {
        // The full package after an early one: the lowest rung's and the audio's segments are the same
        // again, their init segments too but for the packager's clock in the headers.
        return;
      }
      // A key the storage would refuse is never counted as uploaded: taking the package back deletes the
      // uploaded keys as one batch, which one bad key would fail whole.
      assertSafeKey(key, 'a key of the package');
      this.uploaded.add(key);
      await this.storage.upload(key, path.join(pkgDir, file), putOptionsFor(file, this.options));
    });
  }

  /**
   * Takes back what the task's runs put out (top-level files restored unless another task replaced them,
   * then media and journal deleted); logs, never throws: the caller is handling the error behind it.
   */
  async withdraw(): Promise<void> {
    const log = this.options.logger;
    let journal: Journal;
    try {
      journal = await this.readJournal();
    } catch (err) {
      log.error({ err }, 'could not read the journal of the replaced files');
      return;
    }
    const files = Object.keys(journal.files);
    if (this.uploaded.size === 0 && files.length === 0 && !this.options.earlierMedia?.length) return;
    let restored = true;
    // Manifests first, so that nothing points at media about to be deleted.
    files.sort((a, b) => Number(isManifest(b)) - Number(isManifest(a)));
    for (const file of files) {
      try {
        await this.restore(file, journal.files[file]!);
      } catch (err) {
        restored = false;
        log.error({ err, file }, 'could not put back the file a withdrawn package had replaced');
      }
    }
    if (!restored) return;
    let inUse: (dir: string) => boolean;
    try {
      inUse = await this.referencedDirs();
    } catch (err) {
      log.error({ err }, 'could not read the current manifests; the media of the withdrawn package is kept');
      return;
    }
    const own = [...this.uploaded].filter((k) => {
      const rest = k.slice(this.prefix.length + 1);
      return rest.includes('/') && !inUse(rest.split('/')[0]!);
    });
    await this.storage
      .delete(own)
      .catch((err: unknown) =>
        log.error({ err, keys: own.length }, 'could not remove the media of a withdrawn package'),
      );
    await this.removeMediaDirs(this.options.earlierMedia ?? []);
    // A later run of the task has taken it over (this one lost its lease): the journal is its to settle.
    const later = Object.values(journal.files).some((entry) =>
      Object.values(entry.written).some((attempt) => attempt > this.options.attempt),
    );
    if (!later) await this.removeJournal();
  }

  /** After a completed publish: the media of the task's earlier runs (nothing points at it now) and the journal. */
  async settle(): Promise<void> {
    await this.removeMediaDirs(this.options.earlierMedia ?? []);
    await this.removeJournal();
  }

  /**
   * Deletes the media directories below the prefix whose names start with one of `stems` (an earlier run of
   * the task, whose process died after publishing part of a package). Failures are logged.
   */
  private async removeMediaDirs(stems: string[]): Promise<void> {
    if (stems.length === 0) return;
    try {
      const below = `${this.prefix}/`;
      const inUse = await this.referencedDirs();
      // Keys in a directory (not the top-level files) whose name starts with one of the stems, unless a
      // current manifest points there (a run whose package was adopted, a restored earlier package).
      const keys = (await this.storage.list(below)).filter((key) => {
        const [dir, ...rest] = key.slice(below.length).split('/');
        return rest.length > 0 && stems.some((s) => dir!.startsWith(s)) && !inUse(dir!);
      });
      if (keys.length === 0) return;
      await this.storage.delete(keys);
      this.options.logger.info({ files: keys.length }, "removed an earlier attempt's media");
    } catch (err) {
      this.options.logger.warn({ err }, "could not remove an earlier attempt's media");
    }
  }

  /**
   * Which media directories below the prefix the current top-level manifests name: published media a player
   * may be reading is never removed. Throws when a manifest cannot be read (then nothing is removed).
   */
  private async referencedDirs(): Promise<(dir: string) => boolean> {
    let text = '';
    for (const file of TOP_LEVEL_MANIFESTS) {
      const key = joinKey(this.prefix, file);
      if (!(await this.storage.head(key))) continue;
      const local = await this.localFile(`current-${file}`);
      await this.storage.download(key, local);
      text += await readFile(local, 'utf8');
      await rm(local, { force: true });
    }
    return (dir) => text.includes(`${dir}/`);
  }

  private async removeJournal(): Promise<void> {
    try {
      const keys = await this.storage.list(`${this.journalDir}/`);
      if (keys.length) await this.storage.delete(keys);
      // A write into it that a killed run left unfinished (never listed): the task is over, nothing writes there.
      await this.storage.localFiles?.removeStalePartials(this.journalDir, 0);
    } catch (err) {
      this.options.logger.warn({ err }, 'could not remove the journal of the replaced files');
    }
  }

  /** A path in the run's own directory for the copies it reads and writes. */
  private async localFile(name: string): Promise<string> {
    await mkdir(this.backupDir, { recursive: true });
    return path.join(this.backupDir, name);
  }

  private journalKey(file: string): string {
    return joinKey(this.journalDir, file);
  }

  /**
   * The journal as stored: written by this run, by an earlier run of the task whose process died, or by a
   * later one that took the task over. Read afresh each time: runs of one task may overlap (a lost lease).
   */
  private async readJournal(): Promise<Journal> {
    const key = this.journalKey(JOURNAL_FILE);
    let journal: Journal = { files: {} };
    if (await this.storage.head(key)) {
      const local = await this.localFile(JOURNAL_FILE);
      await this.storage.download(key, local, this.options.signal);
      journal = JSON.parse(await readFile(local, 'utf8')) as Journal;
    }
    return journal;
  }

  /**
   * Journals, before anything is replaced, what each top-level file held before the task (a copy, saved once)
   * and what this run writes over it (the digest of `src`; null: removed).
   */
  private async record(entries: { file: string; src: string | null }[]): Promise<void> {
    if (entries.length === 0) return;
    const journal = await this.readJournal();
    for (const { file, src } of entries) {
      this.options.signal?.throwIfAborted();
      let entry = journal.files[file];
      if (!entry) {
        const key = joinKey(this.prefix, file);
        const saved = !!(await this.storage.head(key));
        if (saved) {
          const copy = await this.localFile(`before-${file}`);
          await this.storage.download(key, copy, this.options.signal);
          await this.storage.upload(this.journalKey(file), copy, {
            contentType: contentTypeFor(file),
            cacheControl: 'no-store',
            signal: this.options.signal,
          });
        }
        entry = journal.files[file] = { saved, written: {} };
      }
      const digest = src ? await digestOf(src) : ABSENT;
      entry.written[digest] = Math.max(entry.written[digest] ?? 0, this.options.attempt);
    }
    const local = await this.localFile(JOURNAL_FILE);
    await writeFile(local, JSON.stringify(journal));
    await this.storage.upload(this.journalKey(JOURNAL_FILE), local, {
      contentType: 'application/json',
      cacheControl: 'no-store',
      signal: this.options.signal,
    });
  }

  /** Puts back what `file` held before the task, if it holds what a run of the task left (or nothing). */
  private async restore(file: string, entry: JournalEntry): Promise<void> {
    const key = joinKey(this.prefix, file);
    const info = await this.storage.head(key);
    let current = ABSENT;
    if (info) {
      const now = await this.localFile(`now-${file}`);
      await this.storage.download(key, now);
      current = await digestOf(now);
      await rm(now, { force: true });
    }
    // Replaced by another task since, or by a later run of this one (this run lost its lease to it): not
    // ours to take back.
    const by = entry.written[current];
    if (by === undefined || by > this.options.attempt) return;
    // Not under the task's signal: a cancelled task must still be able to put things back.
    if (entry.saved) {
      const copy = await this.localFile(`restore-${file}`);
      await this.storage.download(this.journalKey(file), copy);
      await this.storage.upload(key, copy, putOptionsFor(file, { ...this.options, signal: undefined }));
    } else if (info) {
      await this.storage.delete([key]);
    }
  }
}

/** The top-level files that point at media directories. */
const TOP_LEVEL_MANIFESTS = ['manifest.mpd', 'master.m3u8'];

/** A task's journal directory below its prefix: `.replaced-<task>`. */
const JOURNAL_DIR_PREFIX = '.replaced-';

/** Whether `key` is a file of a task's journal directory. */
export function isJournalKey(key: string): boolean {
  const parts = key.split('/');
  return parts.length >= 2 && parts[parts.length - 2]!.startsWith(JOURNAL_DIR_PREFIX);
}

/** The journal's own file in the task's journal directory. */
const JOURNAL_FILE = 'journal.json';
/** The digest standing for "no file". */
const ABSENT = 'absent';

interface JournalEntry {
  /** Whether the file existed before the task (its copy is in the journal directory under its name). */
  saved: boolean;
  /** SHA-256 (hex) of every version a run of the task wrote (ABSENT: removed it), with the latest run that did. */
  written: Record<string, number>;
}

interface Journal {
  files: Record<string, JournalEntry>;
}

async function digestOf(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

function putOptionsFor(file: string, options: Pick<PublishOptions, 'cacheControl' | 'signal'>): PutOptions {
  return {
    contentType: contentTypeFor(file),
    cacheControl: isImmutableMedia(file) ? options.cacheControl.segments : options.cacheControl.manifests,
    signal: options.signal,
  };
}

/**
 * A package's files in publishing order (media, playlists, poster, HLS master, DASH manifest), so a reader
 * never finds a manifest whose segments are missing.
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
