import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { TaskFailure } from '../errors.js';
import { assertSafeKey, joinKey } from './keys.js';
import type { ObjectInfo, ObjectLocation, PutOptions, Storage } from './storage.js';

/** Objects as files below one root directory. */
export class LocalStorage implements Storage {
  readonly kind = 'local' as const;
  readonly root: string;

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

  localPath(key: string): string {
    return this.pathOf(key);
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
    await mkdir(path.dirname(dest), { recursive: true });
    // Write beside the destination, then rename: a reader sees the old file or the whole new one.
    const tmp = `${dest}.${randomBytes(6).toString('hex')}.part`;
    try {
      await copyFile(srcPath, tmp);
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async delete(keys: string[]): Promise<void> {
    await Promise.all(keys.map((k) => rm(this.pathOf(k), { force: true })));
  }

  async list(prefix: string): Promise<string[]> {
    const dir = prefix ? this.pathOf(prefix.replace(/\/+$/, '')) : this.root;
    try {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => e.isFile() && !e.name.endsWith('.part'))
        .map((e) => path.relative(this.root, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
        .sort();
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  location(key: string): ObjectLocation {
    return this.publicBaseUrl
      ? { key, url: `${this.publicBaseUrl.replace(/\/+$/, '')}/${joinKey(key)}` }
      : { key };
  }

  async check(): Promise<void> {
    await access(this.root, constants.R_OK | constants.W_OK);
  }

  async close(): Promise<void> {}
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
