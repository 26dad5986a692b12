import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Storage } from '../storage/storage.js';
import { fetchInput, headInput } from './fetch-input.js';

/** The directory of a host's shared inputs, beside the work directories (the orphan sweep skips it). */
export const HOST_INPUTS_DIR = 'host-inputs';

/** An input no job of this host has used for this long is removed (the task's own end removes it sooner). */
export const HOST_INPUT_TTL_MS = 2 * 3600_000;

/** A download refreshes its lock this often; a lock older than LOCK_STALE_MS is a dead downloader's. */
const LOCK_REFRESH_MS = 5_000;
const LOCK_STALE_MS = 30_000;
const LOCK_POLL_MS = 250;

/**
 * The inputs of split tasks whose chunk jobs cannot read byte ranges (a container without a seek index, or a
 * storage without presigned URLs): downloaded once per host into `<workDir>/host-inputs`, and read there by
 * every chunk job of that task on the host, in any worker process sharing the work directory. A lock file
 * makes the other processes wait for the one download; a download whose process died is taken over.
 */
export class HostInputs {
  private readonly dir: string;
  private readonly inFlight = new Map<string, { download: Promise<string>; signal?: AbortSignal }>();

  constructor(
    workDir: string,
    private readonly logger: Logger,
  ) {
    this.dir = path.join(workDir, HOST_INPUTS_DIR);
  }

  /** A local copy of input `key` of task `taskId`, the version in storage now; downloaded if this host has none. */
  async fetch(o: {
    storage: Storage;
    taskId: string;
    key: string;
    maxInputBytes: number;
    signal?: AbortSignal;
  }): Promise<string> {
    const info = await headInput(o.storage, o.key);
    // A new upload under the same key is another entry: never a mix of two versions.
    const version = createHash('sha256')
      .update(`${o.key}\0${info.etag ?? ''}\0${info.size}`)
      .digest('hex')
      .slice(0, 16);
    const file = path.join(this.dir, `${entryStem(o.taskId)}${version}${path.extname(o.key).slice(0, 10)}`);
    const local = await this.shared(file, o);
    // Marks the use: the expiry sweep counts from the last one.
    const now = new Date();
    await utimes(local, now, now).catch(() => undefined);
    return local;
  }

  /**
   * One download per file in this process. A job that joined another's download which was stopped (that job
   * cancelled or handed back) starts its own instead of failing with it.
   */
  private async shared(file: string, o: Parameters<HostInputs['obtain']>[1]): Promise<string> {
    for (;;) {
      let pending = this.inFlight.get(file);
      if (!pending) {
        pending = {
          download: this.obtain(file, o).finally(() => this.inFlight.delete(file)),
          signal: o.signal,
        };
        this.inFlight.set(file, pending);
      }
      try {
        return await pending.download;
      } catch (err) {
        // Stopped by the job that started it, not this one: this one downloads.
        if (pending.signal === o.signal || o.signal?.aborted || !pending.signal?.aborted) throw err;
      }
    }
  }

  /** Removes a task's inputs from this host (its end); failures are logged. */
  async removeTask(taskId: string): Promise<void> {
    const stem = entryStem(taskId);
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.startsWith(stem)) continue;
      await rm(path.join(this.dir, name), { recursive: true, force: true }).catch((err: unknown) =>
        this.logger.warn({ err, taskId }, "could not remove a task's input from this host"),
      );
    }
  }

  private async obtain(
    file: string,
    o: { storage: Storage; taskId: string; key: string; maxInputBytes: number; signal?: AbortSignal },
  ): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const lock = `${file}.lock`;
    for (;;) {
      o.signal?.throwIfAborted();
      if (await exists(file)) return file;
      const held = await open(lock, 'wx').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return undefined;
        throw err;
      });
      if (!held) {
        const age = await stat(lock).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0,
        );
        // Its downloader died without removing it: the next round takes the lock.
        if (age > LOCK_STALE_MS) await rm(lock, { force: true });
        else await delay(LOCK_POLL_MS, undefined, { signal: o.signal });
        continue;
      }
      await held.close();
      // Another process may have finished between the check and the lock.
      if (await exists(file)) {
        await rm(lock, { force: true });
        return file;
      }
      const refresh = setInterval(() => {
        const now = new Date();
        void utimes(lock, now, now).catch(() => undefined);
      }, LOCK_REFRESH_MS);
      const partDir = path.join(this.dir, `.part-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await mkdir(partDir);
        const started = Date.now();
        const fetched = await fetchInput(o.storage, o.key, partDir, {
          maxInputBytes: o.maxInputBytes,
          signal: o.signal,
        });
        await rename(fetched.path, file);
        this.logger.info(
          { taskId: o.taskId, bytes: fetched.size, ms: Date.now() - started },
          'input downloaded for the chunk jobs of this host',
        );
        return file;
      } finally {
        clearInterval(refresh);
        await rm(partDir, { recursive: true, force: true }).catch(() => undefined);
        await rm(lock, { force: true }).catch(() => undefined);
      }
    }
  }
}

/**
 * Removes the host inputs no job used for `ttlMs` (a task that ended on another host), and downloads left by
 * processes that died mid-way. A job reading one keeps its open file: removing it does not cut the read.
 */
export async function sweepHostInputs(
  workDir: string,
  logger: Logger,
  ttlMs = HOST_INPUT_TTL_MS,
): Promise<number> {
  const dir = path.join(workDir, HOST_INPUTS_DIR);
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    // A lock is its download's; it goes with it, or is taken over when stale.
    if (!info || name.endsWith('.lock')) continue;
    if (Date.now() - info.mtimeMs <= ttlMs) continue;
    await rm(file, { recursive: true, force: true }).catch(() => undefined);
    removed++;
  }
  if (removed) logger.info({ removed }, 'removed inputs of this host no chunk job used lately');
  return removed;
}

function entryStem(taskId: string): string {
  return `${taskId.replace(/[^A-Za-z0-9_-]/g, '_')}.`;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
