import { constants } from 'node:fs';
import { access, copyFile, mkdir, opendir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { TaskFailure } from '../domain/failures.js';
import { assertSafeKey, isPartialFile, keyUrlPath, partialFileName, partialTarget } from './keys.js';
import type { LocalFiles, ObjectInfo, ObjectLocation, PutOptions, Storage, StoragePlace } from './storage.js';

/** Objects as files below one root directory. */
export class LocalStorage implements Storage, LocalFiles {
  readonly root: string;
  readonly localFiles: LocalFiles = this;

  constructor(
    root: string,
    private readonly publicBaseUrl?: string,
  ) {
    this.root = path.resolve(root);
  }

  get description(): string {
    return `local:${this.root}`;
  }

  /** The file of a key; refuses anything that would resolve outside the root. */
  pathOf(key: string): string {
    assertSafeKey(key, 'key');
    const full = path.resolve(this.root, key);
    if (!full.startsWith(this.root + path.sep))
      throw new TaskFailure('invalid_input', 'key outside the storage root');
    return full;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.pathOf(key));
      return s.isFile() ? { size: s.size } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async download(key: string, destPath: string): Promise<void> {
    try {
      await copyFile(this.pathOf(key), destPath);
    } catch (err) {
      if (isNotFound(err)) throw new TaskFailure('input_not_found', 'input not found');
      throw err;
    }
  }

  async upload(key: string, srcPath: string, options: PutOptions): Promise<void> {
    // A local copy is a moment's work: a cancel is honoured before it, not within it.
    options.signal?.throwIfAborted();
    const dest = this.pathOf(key);
    // Write beside the destination, then rename: a reader sees the old file or the whole new one.
    const tmp = partialFileName(dest);
    // A delete emptying the directory may remove it between the mkdir and the copy: once more then.
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(path.dirname(dest), { recursive: true });
      } catch (err) {
        throw writeFailure(err, key);
      }
      try {
        await copyFile(srcPath, tmp);
        await rename(tmp, dest);
        return;
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => undefined);
        if (attempt < 3 && isNotFound(err) && (await exists(srcPath))) continue;
        throw writeFailure(err, key);
      }
    }
  }

  /**
   * Removes the `.part` files a killed process left below `prefix` (`''`: everywhere), untouched for
   * `olderThanMs` (a write under way keeps its time fresh). Returns how many it removed.
   */
  async removeStalePartials(
    prefix: string,
    olderThanMs: number | ((key: string) => number),
  ): Promise<number> {
    const dir = prefix ? this.pathOf(prefix.replace(/\/+$/, '')) : this.root;
    let entries;
    try {
      // Streamed: the whole output tree may hold millions of files.
      entries = await opendir(dir, { recursive: true });
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
    const stale: string[] = [];
    for await (const e of entries) {
      if (!e.isFile() || !isPartialFile(e.name)) continue;
      const file = path.join(e.parentPath, e.name);
      const info = await stat(file).catch(() => undefined);
      const key = path.relative(this.root, file).split(path.sep).join('/');
      const limit = typeof olderThanMs === 'number' ? olderThanMs : olderThanMs(partialTarget(key));
      if (info && Date.now() - info.mtimeMs > limit) stale.push(key);
    }
    await this.delete(stale);
    return stale.length;
  }

  /** Deletes the files, and the directories they leave empty (a bucket has no directories to leave behind). */
  async delete(keys: string[]): Promise<void> {
    await Promise.all(keys.map((k) => rm(this.pathOf(k), { force: true })));
    const dirs = new Set(keys.map((k) => path.dirname(this.pathOf(k))));
    // Deepest first, then each one's parents, up to (not including) the root.
    for (const start of [...dirs].sort((a, b) => b.length - a.length)) {
      for (let dir = start; dir.startsWith(this.root + path.sep); dir = path.dirname(dir)) {
        try {
          await rmdir(dir);
        } catch {
          break; // not empty (or gone already): its parents are not empty either
        }
      }
    }
  }

  async list(prefix: string): Promise<string[]> {
    const dir = prefix ? this.pathOf(prefix.replace(/\/+$/, '')) : this.root;
    try {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => e.isFile() && !isPartialFile(e.name))
        .map((e) => path.relative(this.root, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
        .sort();
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  place(prefix: string): StoragePlace {
    return { storage: 'local', prefix };
  }

  location(key: string): ObjectLocation {
    return this.publicBaseUrl
      ? { key, url: `${this.publicBaseUrl.replace(/\/+$/, '')}/${keyUrlPath(key)}` }
      : { key };
  }

  async check(): Promise<void> {
    await access(this.root, constants.R_OK | constants.W_OK);
    // A file where the directory should be passes `access`, and every write below it fails.
    if (!(await stat(this.root)).isDirectory()) throw new Error(`${this.root} is not a directory`);
  }

  async close(): Promise<void> {}
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * A failed output write as the task's reason, naming the key, never the server's path: a full disk is
 * retried; an unwritable directory (permissions, read-only, a file in the way) fails at once.
 */
function writeFailure(err: unknown, key: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new TaskFailure('disk_full', `the output disk is full (writing ${key})`, { cause: err });
  }
  const why: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'the file system is read-only',
    ENOTDIR: 'a file stands where the key needs a directory',
    EISDIR: 'a directory stands where the key needs a file',
    EEXIST: 'a file stands where the key needs a directory',
  };
  if (code && why[code]) {
    return new TaskFailure('storage_denied', `the output cannot be written at ${key}: ${why[code]}`, {
      cause: err,
    });
  }
  return err;
}
