import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
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
 * Removes work directories (named by ownedWorkDirName) of processes that are gone: pid not running, this pid
 * under another incarnation (restarted container), or a pid reused by a program that is not Node.js.
 */
export async function sweepOrphanWorkDirs(workDir: string, logger: Logger): Promise<number> {
  let removed = 0;
  for (const name of await readdir(workDir).catch(() => [] as string[])) {
    const [pidText, tag] = name.split('-');
    const pid = Number(pidText);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const dir = path.join(workDir, name);
    const earlierSelf = pid === process.pid && tag !== incarnation;
    if (!earlierSelf && isAlive(pid) && !(await notNode(pid))) continue;
    await rm(dir, { recursive: true, force: true });
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

/**
 * Whether `pid` now runs something other than Node.js (a reused pid: it cannot have made a work directory).
 * False where /proc does not say (not Linux, another user's process hidden): the directory is kept.
 */
async function notNode(pid: number): Promise<boolean> {
  try {
    const argv0 = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0] ?? '';
    // A kernel thread has no command line; Node's argv[0] is `node`, `nodejs`, `node20`… or a path to one.
    return argv0 !== '' && !path.basename(argv0).includes('node');
  } catch {
    return false;
  }
}
