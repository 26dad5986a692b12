import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
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
 * pid under another incarnation (a restarted container), or the process with that pid now started after the
 * directory was last changed (the pid was reused, after a reboot: it cannot have made it). Directories of
 * other live processes, and names not made by ownedWorkDirName, are left alone.
 */
export async function sweepOrphanWorkDirs(workDir: string, logger: Logger): Promise<number> {
  let removed = 0;
  for (const name of await readdir(workDir).catch(() => [] as string[])) {
    const [pidText, tag] = name.split('-');
    const pid = Number(pidText);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const dir = path.join(workDir, name);
    const earlierSelf = pid === process.pid && tag !== incarnation;
    if (!earlierSelf && isAlive(pid) && !(await startedAfter(pid, dir))) continue;
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

const PID_REUSE_SLACK_MS = 5 * 60_000;

/**
 * Whether the process `pid` started after `dir` was last changed (its files or its entry): then it did not make
 * it, whatever its pid says. A directory's times only move forward from its creation, so this never holds for
 * the directory of the process that made it. False where /proc does not say (not Linux).
 */
async function startedAfter(pid: number, dir: string): Promise<boolean> {
  try {
    const [stat, system, info] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile('/proc/stat', 'utf8'),
      lstat(dir),
    ]);
    // Fields after the command name (which may hold spaces and parentheses): state is the 3rd field of the
    // line, starttime the 22nd, in clock ticks (USER_HZ, 100 on Linux) since boot.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const boot = Number(/^btime (\d+)$/m.exec(system)?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(boot)) return false;
    const started = (boot + ticks / 100) * 1000;
    // Minutes of slack: btime is in whole seconds, and moves with the wall clock (a clock set forward after
    // the process started would make it seem younger). A reused pid's process came up after a reboot.
    return started > Math.min(info.mtimeMs, info.ctimeMs) + PID_REUSE_SLACK_MS;
  } catch {
    return false;
  }
}
