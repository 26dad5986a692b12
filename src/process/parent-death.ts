import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/**
 * How a program is started so that it dies with this process, even when this process is killed with SIGKILL
 * and has no chance to stop it: on Linux through util-linux's `setpriv --pdeathsig KILL` (Essential on
 * Debian and Ubuntu, so always there), which asks the kernel to send SIGKILL to the program when its parent
 * exits, then replaces itself with the program (same pid, same process group, same exit status).
 * Elsewhere, or without setpriv, the program is started as is.
 */
export interface Launch {
  command: string;
  args: string[];
  /** Whether setpriv stands in front: a program that cannot be started then shows as setpriv's exit 126/127. */
  viaSetpriv: boolean;
}

let setprivPath: string | null | undefined;

function findSetpriv(): string | null {
  if (process.platform !== 'linux') return null;
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, '/usr/bin', '/bin']) {
    const candidate = path.join(dir, 'setpriv');
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    // util-linux before 2.33 (RHEL 8) and busybox have a setpriv without --pdeathsig: programs start directly.
    const probe = spawnSync(candidate, ['--pdeathsig', 'KILL', '--', 'true'], {
      stdio: 'ignore',
      timeout: 5000,
    });
    return probe.status === 0 ? candidate : null;
  }
  return null;
}

export function launchTiedToParent(command: string, args: readonly string[]): Launch {
  if (setprivPath === undefined) setprivPath = findSetpriv();
  if (!setprivPath) return { command, args: [...args], viaSetpriv: false };
  return { command: setprivPath, args: ['--pdeathsig', 'KILL', '--', command, ...args], viaSetpriv: true };
}

/**
 * setpriv's own message when it could not start the program ("setpriv: failed to execute ffmpeg: No such
 * file or directory", exit 127 or 126), as the reason Node would have given for a direct spawn; undefined
 * when the program did start.
 */
export function setprivExecFailure(code: number | null, stderr: string): string | undefined {
  if (code !== 126 && code !== 127) return undefined;
  const m = /^setpriv: failed to execute [^\n]*?: ([^\n]+)$/m.exec(stderr);
  return m ? m[1]!.trim() : undefined;
}
