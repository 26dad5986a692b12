/**
 * Why a task failed. `permanent` failures (the input itself is the problem) are never retried; the others
 * (a lost worker, an unreachable store) may succeed on another attempt.
 */
export const failureCodes = {
  input_not_found: { permanent: true },
  invalid_input: { permanent: true },
  not_a_video: { permanent: true },
  invalid_subtitles: { permanent: true },
  limit_exceeded: { permanent: true },
  encode_failed: { permanent: true },
  package_failed: { permanent: true },
  qc_failed: { permanent: true },
  cancelled: { permanent: true },
  timeout: { permanent: true },
  storage_error: { permanent: false },
  storage_denied: { permanent: true },
  disk_full: { permanent: false },
  worker_lost: { permanent: false },
  internal: { permanent: false },
} as const satisfies Record<string, { permanent: boolean }>;

export type FailureCode = keyof typeof failureCodes;

/** A failure whose message is written for the person who submitted the task: no paths, no secrets. */
export class TaskFailure extends Error {
  override name = 'TaskFailure';
  readonly permanent: boolean;
  constructor(
    readonly code: FailureCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.permanent = failureCodes[code].permanent;
  }
}

export function isTaskFailure(err: unknown): err is TaskFailure {
  return err instanceof TaskFailure;
}

/** Turns any error into a TaskFailure; unknown errors keep a generic message so internals never leak. */
export function toTaskFailure(err: unknown): TaskFailure {
  if (err instanceof TaskFailure) return err;
  // A key the storage refuses is refused on every attempt: permanent, and said as it is.
  if (err instanceof Error && err.name === 'UnsafeKeyError')
    return new TaskFailure('invalid_input', err.message);
  return new TaskFailure('internal', 'internal error while processing the task', { cause: err });
}
