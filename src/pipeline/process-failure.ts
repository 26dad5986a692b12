import os from 'node:os';
import { TaskFailure, type FailureCode } from '../domain/failures.js';
import { ProcessError } from '../process/run-process.js';
import { zscaleMissing } from './tools.js';

/** FFmpeg messages whose words mean little to the person who uploaded the file, and what they mean. */
const knownCauses: [RegExp, string][] = [
  [
    /Cannot determine format of input stream|Output file is empty, nothing was encoded/,
    'no frame of its video stream could be decoded (the stream is corrupt)',
  ],
];

/**
 * What FFmpeg prints after a failure's cause (generic consequences, size summary, encoders' closing
 * statistics, the poster's darkness measures): the reason is the line before these.
 */
const consequenceLine =
  /^(Conversion failed|Error while|Failed to inject frame|Error marking filters|Last message repeated|\[out#|frame=|video:\d+kB audio:)/;
const summaryLine =
  /^\[(libx264|libx265|aac|libopus|libvorbis|libmp3lame|mjpeg|libvpx[\w-]*) @ 0x[0-9a-f]+\] (frame [IPB]:|mb [IPB] |consecutive B-frames|8x8 transform|coded y,|i16 |i8 |i4 |i8c |Weighted P-Frames|ref [PB] L|direct mvs|final ratefactor|kb\/s:|Qavg:|\d+ frames left in the queue)|^\[Parsed_blackframe_\d+ @ 0x[0-9a-f]+\] frame:/;

/** What FFmpeg and Shaka Packager say when a write fails on a full disk. */
export const diskFullReport = /No space left on device|ENOSPC/;

/** Signals that stop a program from outside (a service manager, an operator), not because of its input. */
const stopSignals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * A failed child as the reason a person reads: cancel and watchdog keep their codes, what says nothing of the
 * input (full disk, killed, cannot start) is retried, the rest quotes stderr's last line without local paths.
 */
export function processFailure(err: unknown, code: FailureCode, what: string, hidePaths: string[]): unknown {
  if (!(err instanceof ProcessError)) return err;
  if (err.kind === 'aborted') return new TaskFailure('cancelled', 'cancelled', { cause: err });
  if (err.kind === 'timeout' || err.kind === 'idle') {
    return new TaskFailure('timeout', `${what}: ${err.message}`, { cause: err });
  }
  const program = err.program || 'the program';
  if (err.kind === 'spawn') {
    return new TaskFailure('internal', `${what}: ${program} could not be started on the worker`, {
      cause: err,
    });
  }
  if (diskFullReport.test(err.stderrTail)) {
    return new TaskFailure('disk_full', `${what}: the worker's disk is full`, { cause: err });
  }
  // A program that printed more than can be read: this input makes it so, another attempt would too.
  if (err.kind === 'output') return new TaskFailure(code, `${what}: ${err.message}`, { cause: err });
  // Stopped from outside (a service manager stopping the whole group, an operator): not the input's doing.
  // FFmpeg catches these signals and exits 255 saying so.
  const caught = /received signal (\d+)/.exec(err.stderrTail)?.[1];
  const stopSignal = stopSignals.find(
    (s) => s === err.exitSignal || os.constants.signals[s] === Number(caught),
  );
  if (stopSignal) {
    return new TaskFailure('internal', `${what}: ${program} was stopped (${stopSignal})`, { cause: err });
  }
  // Nobody here sent it: the kernel's out-of-memory killer, or an operator. Another attempt may fit.
  if (err.exitSignal === 'SIGKILL') {
    return new TaskFailure('internal', `${what}: ${program} was killed by the system (out of memory?)`, {
      cause: err,
    });
  }
  // A crash (SIGSEGV, SIGABRT…) on this input: its last words are rarely useful, the signal is.
  if (err.exitSignal) {
    return new TaskFailure(code, `${what}: ${program} crashed (${err.exitSignal})`, { cause: err });
  }
  // The worker's FFmpeg lacks a filter the configuration uses: no input converts there until it is fixed.
  if (/No such filter: 'zscale'/.test(err.stderrTail)) {
    return new TaskFailure('internal', `${what}: ${zscaleMissing}`, { cause: err });
  }
  const known = knownCauses.find(([pattern]) => pattern.test(err.stderrTail));
  if (known) return new TaskFailure(code, `${what}: ${known[1]}`, { cause: err });
  let detail =
    err.stderrTail
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !consequenceLine.test(l) && !summaryLine.test(l))
      .pop() ?? err.message;
  // `[h264 @ 0x55d0c2a4] Invalid NAL unit size` → `h264: Invalid NAL unit size`: no addresses in reasons.
  detail = detail.replace(/^\[([\w,]+) @ 0x[0-9a-f]+\]\s*/, '$1: ');
  for (const p of hidePaths) detail = detail.split(p).join('');
  detail = detail.replace(/file:\S*/g, '').slice(0, 240);
  return new TaskFailure(code, `${what}: ${detail}`, { cause: err });
}
