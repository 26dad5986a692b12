import { TaskFailure, type FailureCode } from '../errors.js';
import { ProcessError } from '../process/run-process.js';

/**
 * Maps a failed child process to the reason a person reads: cancellation and watchdog kills keep their own
 * codes, other failures quote the tool's last line of stderr with local paths removed.
 */
export function processFailure(err: unknown, code: FailureCode, what: string, hidePaths: string[]): unknown {
  if (!(err instanceof ProcessError)) return err;
  if (err.kind === 'aborted') return new TaskFailure('cancelled', 'cancelled', { cause: err });
  if (err.kind === 'timeout' || err.kind === 'idle') {
    return new TaskFailure('timeout', `${what}: ${err.message}`, { cause: err });
  }
  let detail =
    err.stderrTail
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^(Conversion failed|Error while|\[out#|frame=)/.test(l))
      .pop() ?? err.message;
  for (const p of hidePaths) detail = detail.split(p).join('');
  detail = detail.replace(/file:\S*/g, '').slice(0, 240);
  return new TaskFailure(code, `${what}: ${detail}`, { cause: err });
}
