import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
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

let setpriv: Promise<string | null> | undefined;

/**
 * The setpriv that can tie a program to this process, or null: looked for once per process, in the
 * background (two execs, ≈10 ms). Callers that start programs soon may call it early so that the first launch
 * does not wait for it.
 */
export function findSetpriv(): Promise<string | null> {
  setpriv ??= lookForSetpriv();
  return setpriv;
}

async function lookForSetpriv(): Promise<string | null> {
  if (process.platform !== 'linux') return null;
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, '/usr/bin', '/bin']) {
    const candidate = path.join(dir, 'setpriv');
    try {
      await access(candidate, constants.X_OK);
    } catch {
      continue;
    }
    // util-linux before 2.33 (RHEL 8) and busybox have a setpriv without --pdeathsig: programs start directly.
    const works = await new Promise<boolean>((resolve) => {
      const probe = spawn(candidate, ['--pdeathsig', 'KILL', '--', 'true'], {
        stdio: 'ignore',
        timeout: 5000,
      });
      probe.on('error', () => resolve(false));
      probe.on('close', (code) => resolve(code === 0));
    });
    return works ? candidate : null;
  }
  return null;
}

export async function launchTiedToParent(command: string, args: readonly string[]): Promise<Launch> {
  const setprivPath = await findSetpriv();
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
