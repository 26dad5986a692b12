import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/**
 * This process's incarnation: the pid alone does not tell one from another when a container restarts (node
 * gets the same pid under tini each time) with its work directory on a volume.
 */
const incarnation = randomBytes(4).toString('hex');

/**
 * The name of a work directory this process owns (`<pid>-<incarnation>-<purpose>`), so a start-up sweep can
 * tell which ones belong to processes that are gone.
 */
export function ownedWorkDirName(purpose: string): string {
  return `${process.pid}-${incarnation}-${purpose}`;
}

/**
 * Removes work directories left by processes that are gone: their pid no longer runs, or it is this process's
 * pid under another incarnation (a restarted container). Directories of other live processes, and names not
 * made by ownedWorkDirName, are left alone.
 */
export async function sweepOrphanWorkDirs(workDir: string, logger: Logger): Promise<number> {
  let removed = 0;
  for (const name of await readdir(workDir).catch(() => [] as string[])) {
    const [pidText, tag] = name.split('-');
    const pid = Number(pidText);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const earlierSelf = pid === process.pid && tag !== incarnation;
    if (!earlierSelf && isAlive(pid)) continue;
    await rm(path.join(workDir, name), { recursive: true, force: true });
    removed++;
  }
  if (removed) logger.info({ removed }, 'removed work directories of stopped processes');
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
