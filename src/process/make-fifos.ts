import { runProcess } from './run-process.js';

/**
 * Creates named pipes (FIFOs) at the given paths with `mkfifo` (coreutils; Node has no mkfifo call), run
 * with an argument array like every other program. The paths must not exist yet.
 */
export async function makeFifos(paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return;
  // `--` so that no path can be read as an option.
  await runProcess('mkfifo', ['-m', '600', '--', ...paths], { timeoutMs: 10_000, tiedToParent: false });
}
