import type { Logger } from 'pino';
import { sweepHostInputs } from './host-inputs.js';
import type { Storage } from '../storage/storage.js';
import { isJournalKey } from './publish.js';
import { sweepOrphanWorkDirs } from './work-dirs.js';

/** How long a `.part` file may go unwritten before a sweep removes it: an upload or a publish may pause. */
const STALE_PART_MS = 60 * 60_000;
/**
 * The same for a part in a task's journal directory (`.replaced-<task>/`): its files are copies of a manifest
 * or the journal, written in milliseconds, so one untouched for a minute is a write a kill cut off.
 */
const STALE_JOURNAL_PART_MS = 60_000;
/** How often a worker process sweeps again: work directories of processes that died since, and parts. */
const WORK_DIR_SWEEP_MS = 10 * 60_000;
/** The output tree may hold millions of files: walked once an hour. */
const OUTPUT_SWEEP_MS = 60 * 60_000;

/**
 * Removes the `.part` files that a publish to local output cut off by a kill left behind (never listed nor
 * served): a journal's at once, others once an hour old. Logs, never throws.
 */
export async function sweepOutputPartials(output: Storage, logger: Logger): Promise<void> {
  if (!output.localFiles) return;
  try {
    const removed = await output.localFiles.removeStalePartials('', (key) =>
      isJournalKey(key) ? STALE_JOURNAL_PART_MS : STALE_PART_MS,
    );
    if (removed) logger.info({ removed }, 'removed output files a stopped process left unfinished');
  } catch (err) {
    logger.warn({ err }, 'could not look for unfinished output files');
  }
}

/**
 * A worker's sweeps at start and then periodically, so a SIGKILLed worker's work directory goes without
 * waiting for its restart; also the output's unfinished parts. Returns the function that stops them.
 */
export function startSweeps(options: {
  workDir: string;
  output: Storage;
  logger: Logger;
  /** Both sweeps at this interval instead (tests). */
  intervalMs?: number;
}): () => void {
  const { workDir, output, logger, intervalMs } = options;
  const sweepWorkDirs = () =>
    Promise.all([sweepOrphanWorkDirs(workDir, logger), sweepHostInputs(workDir, logger)]).catch(
      (err: unknown) => logger.warn({ err }, 'could not sweep the work directories'),
    );
  // The first output sweep runs in the background: the tree may be large, and nothing waits for it.
  void sweepOutputPartials(output, logger);
  const timers = [
    setInterval(() => void sweepWorkDirs(), intervalMs ?? WORK_DIR_SWEEP_MS),
    setInterval(() => void sweepOutputPartials(output, logger), intervalMs ?? OUTPUT_SWEEP_MS),
  ];
  for (const t of timers) t.unref();
  return () => timers.forEach((t) => clearInterval(t));
}
