import type { TaskFailure } from '../domain/failures.js';
import type {
  CallbackState,
  EarlyOutput,
  TaskOutput,
  TaskRecord,
  TaskRequest,
  TaskStatus,
} from '../domain/task.js';

/** What a cancel did. */
export interface CancelResult {
  task: TaskRecord;
  /**
   * This call ended a queued task or one whose run was lost (lease lapsed): no worker settles it, so the
   * caller reports its end (metrics, callback). Of concurrent cancels, in any process, only one is told so.
   */
  endedNow: boolean;
}

/**
 * The queue port, split by role so each caller depends on the one it uses (API: TaskStore, notifier:
 * CallbackOutbox, worker: WorkerHost); what a worker decides is in worker-policy.ts, for every backend.
 */
export interface TaskQueue extends TaskStore, CallbackOutbox, WorkerHost {
  /** Closes connections; idempotent. Workers started from this queue must be closed first. */
  close(): Promise<void>;
}

/** The task records: what the API reads and writes. */
export interface TaskStore {
  /** Records a new task as `queued`. With an idempotency key, returns the task already made for it. */
  submit(request: TaskRequest, options?: SubmitOptions): Promise<SubmitResult>;
  get(id: string): Promise<TaskRecord | undefined>;
  /** Newest first. */
  list(query: ListQuery): Promise<{ tasks: TaskRecord[]; nextCursor?: string }>;
  /** Number of tasks by status (finished ones within retention). */
  counts(): Promise<Record<TaskStatus, number>>;
  /**
   * Where a queued task stands in line: 1 when it is the next to be taken. Undefined when the task is not
   * queued. Optional: a backend that cannot tell leaves `queue_position` out of the status document.
   */
  position?(id: string): Promise<number | undefined>;
  /**
   * Cancels a task: queued or lost (lease lapsed), it fails at once; running, its handler's signal is aborted
   * within seconds. Undefined for an unknown id.
   */
  cancel(id: string): Promise<CancelResult | undefined>;
  /** Throws when the backend cannot be reached (readiness). */
  check(): Promise<void>;
}

/** The completion callbacks' state, kept with the tasks: what the notifier records and resumes. */
export interface CallbackOutbox {
  /** Records the state of the completion callback in the task's record. */
  setCallbackState(id: string, state: CallbackState): Promise<void>;
  /**
   * Finished tasks whose callback is still `pending` (its process stopped before delivering it), oldest
   * first, at most `limit`: a starting worker sends them.
   */
  pendingCallbacks(limit: number): Promise<TaskRecord[]>;
  /**
   * Replaces the callback state only if it is still `expected` (as read): of processes taking up the same
   * pending delivery, one wins. Returns whether this one did.
   */
  claimCallback(id: string, expected: CallbackState, next: CallbackState): Promise<boolean>;
}

/** Runs tasks: what a worker process starts. */
export interface WorkerHost {
  /** Starts taking tasks and running the handler on them. */
  startWorker(handler: TaskHandler, options: WorkerOptions): TaskWorker;
}

export interface SubmitOptions {
  idempotencyKey?: string;
  /**
   * Refuse a new task (QueueFullError) when this many are queued already. Checked after the idempotency key:
   * a request repeated while the queue is full still gets the task it made.
   */
  maxQueued?: number;
}

/** Thrown by submit when `maxQueued` tasks are waiting: nothing was created. */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
  constructor(readonly queued: number) {
    super(`${queued} tasks are waiting`);
  }
}

export type SubmitResult =
  | { outcome: 'created' | 'existing'; task: TaskRecord }
  /** The idempotency key was used before with another request. */
  | { outcome: 'conflict'; task: TaskRecord };

export interface ListQuery {
  status?: TaskStatus;
  limit: number;
  cursor?: string;
}

export interface TaskRunContext {
  signal: AbortSignal;
  /** 1 for the first run. */
  attempt: number;
  /**
   * Records stage and progress (0..100) and, when known, the seconds left; cheap to call often, the queue
   * throttles writes. A backend that keeps `details.etaSeconds` shows it as `eta_seconds` while processing.
   */
  reportProgress(stage: string, progress: number, details?: ProgressDetails): void;
  /** Split and stitch: parts of this task run as jobs of their own (see TaskSteps); absent where unsupported. */
  steps?: TaskSteps;
}

/** A part of a task that any worker may run (a chunk of a split encode), by the worker's `stepHandler`. */
export interface StepSpec {
  /** Unique within its task: letters, digits and `-`. */
  name: string;
  /** JSON, as the step handler gets it. */
  data: unknown;
}

/** Where a task's steps sit in its progress while they run: the status shows their mean from `from` to `to`. */
export interface StepsProgress {
  stage: string;
  from: number;
  to: number;
}

/**
 * A task's steps (BullMQ children; SQLite rows). Once all succeed the task's handler runs again with `done`;
 * one that fails for good fails the task, and cancelling the task stops them.
 */
export interface TaskSteps {
  /** On the run that resumes the task after its steps: the `state` given with them, and their outputs by name. */
  readonly done?: { state: unknown; outputs: Record<string, unknown> };
  /**
   * Queues `steps` and ends this run: the promise rejects with StepsQueued, which the handler lets through
   * (the run is then neither failed nor retried). `state` (JSON) comes back in `done`.
   */
  queue(steps: StepSpec[], state: unknown, progress: StepsProgress): Promise<never>;
}

/** Thrown through a task's handler when it queued its steps: the run ends here, the task goes on. */
export class StepsQueued extends Error {
  override name = 'StepsQueued';
  constructor(readonly count: number) {
    super(`${count} steps queued`);
  }
}

/** What a step's run gets. */
export interface StepRunContext {
  signal: AbortSignal;
  /** 1 for the step's first run. */
  attempt: number;
  /** 0..1 of the step done; cheap to call often. */
  reportProgress(fraction: number): void;
}

/** Runs one step of `task`; resolves with its output (JSON), or rejects as a task's handler does. */
export type StepHandler = (task: TaskRecord, step: StepSpec, ctx: StepRunContext) => Promise<unknown>;

export interface ProgressDetails {
  etaSeconds?: number;
  /** A first package is published there (EARLY_MANIFEST): its manifest plays while the task goes on. */
  earlyOutput?: EarlyOutput;
}

/** Runs one task; resolves with its output, or rejects (a TaskFailure says whether a retry can help). */
export type TaskHandler = (task: TaskRecord, ctx: TaskRunContext) => Promise<TaskOutput>;

export interface WorkerOptions {
  concurrency: number;
  /** Runs the steps tasks queue (TaskSteps); a worker without one takes no steps. */
  stepHandler?: StepHandler;
  /** Called once per task by the worker that settled it, after its final status is stored. */
  onSettled?: (task: TaskRecord) => void;
  /**
   * Called for a task that ran before (`earlierRuns`, whose processes died) and ends without its handler
   * running again (cancelled, or out of runs): what those runs published is to be taken back.
   */
  onAbandoned?: (task: TaskRecord, earlierRuns: number) => void;
}

export interface TaskWorker {
  /**
   * Stops taking tasks. Running tasks may finish within `graceMs`; after it they are aborted and handed
   * back to the queue (not failed), so another worker or the next start takes them again. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

export type { TaskFailure };
