import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';

/**
 * How a program is started so that it dies with this process, even a SIGKILLed one: through `setpriv
 * --pdeathsig KILL` where there is one (docs/design-notes.md, "Child processes"), else as is.
 */
export interface Launch {
  command: string;
  args: string[];
  /** Whether setpriv stands in front: a program that cannot be started then shows as setpriv's exit 126/127. */
  viaSetpriv: boolean;
}

let setpriv: Promise<string | null> | undefined;

/**
 * The setpriv that can tie a program to this process, or null: looked for once, in the background, so
 * callers may call it early and the first launch need not wait.
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
 * setpriv's message when it could not start the program (exit 127 or 126), as the reason Node would give
 * for a direct spawn; undefined when the program did start.
 */
export function setprivExecFailure(code: number | null, stderr: string): string | undefined {
  if (code !== 126 && code !== 127) return undefined;
  const m = /^setpriv: failed to execute [^\n]*?: ([^\n]+)$/m.exec(stderr);
  return m ? m[1]!.trim() : undefined;
}
