import { createHash, randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';

/**
 * The host (container) this process runs on: processes of other hosts sharing a work directory (a volume)
 * are not this one's to judge, their pids mean nothing here.
 */
const host = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/**
 * This process's incarnation: the pid alone does not tell one from another when a container restarts (node
 * gets the same pid under tini each time) with its work directory on a volume.
 */
const incarnation = randomBytes(4).toString('hex');

const ownedName = /^([0-9a-f]{8})-(\d+)-([0-9a-f]{8})-/;
/** Names of versions before the host and incarnation: `<pid>-…`. */
const legacyName = /^(\d+)-/;

/**
 * The name of a work directory this process owns (`<host>-<pid>-<incarnation>-<purpose>`), so a start-up
 * sweep can tell which ones belong to processes that are gone.
 */
export function ownedWorkDirName(purpose: string): string {
  return `${host}-${process.pid}-${incarnation}-${purpose}`;
}

/**
 * Removes work directories left by processes of this host that are gone: their pid no longer runs, or it is
 * this process's pid under another incarnation (a restarted container). Directories of live processes, of
 * other hosts, and names not made by ownedWorkDirName are left alone.
 */
export async function sweepOrphanWorkDirs(workDir: string, logger: Logger): Promise<number> {
  let removed = 0;
  for (const name of await readdir(workDir).catch(() => [] as string[])) {
    if (!isOrphan(name)) continue;
    await rm(path.join(workDir, name), { recursive: true, force: true });
    removed++;
  }
  if (removed) logger.info({ removed }, 'removed work directories of stopped processes');
  return removed;
}

function isOrphan(name: string): boolean {
  const owned = ownedName.exec(name);
  if (owned) {
    const [, tag, pidText, from] = owned;
    if (tag !== host) return false;
    const pid = Number(pidText);
    return (pid === process.pid && from !== incarnation) || (pid !== process.pid && !isAlive(pid));
  }
  const legacy = legacyName.exec(name);
  if (legacy) {
    const pid = Number(legacy[1]);
    return pid > 0 && pid !== process.pid && !isAlive(pid);
  }
  return false;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
