import { readdir, readFile } from 'node:fs/promises';

/** Pids of live processes whose command line contains `needle` (read from /proc: no ps needed). */
export async function processesMatching(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').join(' ');
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      // A zombie has exited already; its parent just has not reaped it yet.
      if (cmdline.includes(needle) && !/^\d+ \(.*\) Z /.test(stat)) pids.push(Number(name));
    } catch {
      // The process exited while we looked.
    }
  }
  return pids;
}

/** Polls `check` every 50 ms until it returns a truthy value or `timeoutMs` passes; returns the last value. */
export async function poll<T>(check: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}
