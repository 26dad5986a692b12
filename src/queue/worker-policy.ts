import { TaskFailure, toTaskFailure, type FailureCode } from '../domain/failures.js';
import type { EarlyOutput } from '../domain/task.js';
import type { ProgressDetails } from './task-queue.js';

// What every backend's worker decides alike (abort reasons, progress throttle, hand back/retry/fail); the
// backends only store the outcome.

/** Why a worker aborted a run's signal. */
export type AbortReason = 'cancelled' | 'shutdown' | 'lease_lost';

/** A progress write as a backend stores it. */
export interface ProgressUpdate {
  stage: string;
  /** 0..100, one decimal. */
  progress: number;
  etaSeconds?: number;
  earlyOutput?: EarlyOutput;
  /** When it was reported (ms). */
  at: number;
}

/** Progress is written at most this often within one stage; a new stage is written at once. */
export const PROGRESS_WRITE_INTERVAL_MS = 500;

/** A run's `reportProgress`: keeps the writes `write` gets to one per stage change or per interval. */
export function throttledProgress(
  write: (update: ProgressUpdate) => void,
): (stage: string, progress: number, details?: ProgressDetails) => void {
  let lastWrite = 0;
  let lastStage = '';
  return (stage, progress, details = {}) => {
    const now = Date.now();
    if (stage === lastStage && now - lastWrite < PROGRESS_WRITE_INTERVAL_MS) return;
    lastStage = stage;
    lastWrite = now;
    write({
      stage,
      progress: Math.round(Math.max(0, Math.min(100, progress)) * 10) / 10,
      etaSeconds: details.etaSeconds,
      ...(details.earlyOutput ? { earlyOutput: details.earlyOutput } : {}),
      at: now,
    });
  };
}

/** What to do with a run that ended without output. */
export type RunEnd =
  /** Not a failure: the worker stops (shutdown) or the task is another's now (lease lost). */
  | { kind: 'hand_back'; reason: 'shutdown' | 'lease_lost' }
  | { kind: 'retry'; failure: TaskFailure; delayMs: number }
  | { kind: 'fail'; failure: TaskFailure };

/**
 * Decides the end of run `attempt` (1 for the first) of `maxAttempts`, which threw `err` or was aborted for
 * `abortReason`. Permanent failures and the last attempt fail; others retry after an exponential backoff.
 */
export function classifyRunEnd({
  err,
  abortReason,
  attempt,
  maxAttempts,
  retryBackoffMs,
}: {
  err: unknown;
  abortReason?: AbortReason;
  attempt: number;
  maxAttempts: number;
  retryBackoffMs: number;
}): RunEnd {
  if (abortReason === 'shutdown' || abortReason === 'lease_lost')
    return { kind: 'hand_back', reason: abortReason };
  const failure =
    abortReason === 'cancelled' ? new TaskFailure('cancelled', 'cancelled') : toTaskFailure(err);
  if (failure.permanent || attempt >= maxAttempts) return { kind: 'fail', failure };
  return { kind: 'retry', failure, delayMs: retryDelayMs(attempt, retryBackoffMs) };
}

/** The wait before run `attempt + 1`, after run `attempt` failed: doubled per attempt. */
export function retryDelayMs(attempt: number, retryBackoffMs: number): number {
  return retryBackoffMs * 2 ** (attempt - 1);
}

/** The default of `retryBackoffMs`. */
export const DEFAULT_RETRY_BACKOFF_MS = 2000;

/** The failure of a task whose earlier runs all died with their process (crash, OOM kill). */
export function outOfRuns(runs: number): { code: FailureCode; message: string } {
  return { code: 'worker_lost', message: `the task ran ${runs} times without finishing; giving up` };
}

/** The failure recorded for a task cancelled before or between runs. */
export const cancelledFailure = { code: 'cancelled', message: 'cancelled' } as const satisfies {
  code: FailureCode;
  message: string;
};

/** A task's progress while its steps run, from each step's 0..1 (done steps count 1). */
export function stepsProgress(
  span: { stage: string; from: number; to: number },
  fractions: number[],
  startedAt: number,
  now = Date.now(),
): { stage: string; progress: number; etaSeconds?: number; chunks: { total: number; done: number } } {
  const total = fractions.length;
  const mean = total ? fractions.reduce((a, f) => a + Math.max(0, Math.min(1, f)), 0) / total : 0;
  const elapsed = (now - startedAt) / 1000;
  // The steps' own pace; what follows them (the stitch) is short beside them.
  const etaSeconds = mean > 0.02 && elapsed > 0 ? Math.round((elapsed * (1 - mean)) / mean) : undefined;
  return {
    stage: span.stage,
    progress: Math.round((span.from + (span.to - span.from) * mean) * 10) / 10,
    ...(etaSeconds === undefined ? {} : { etaSeconds }),
    chunks: { total, done: fractions.filter((f) => f >= 1).length },
  };
}
