import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { FailureCode } from '../domain/failures.js';
import { waitAtMost } from '../process/wait-at-most.js';
import {
  requestHash,
  type CallbackState,
  type TaskOutput,
  type TaskRecord,
  type TaskRequest,
  type TaskStatus,
  type WireCallbackState,
  type WireEarlyOutput,
  type WireTaskOutput,
  type WireTaskRequest,
} from '../domain/task.js';
import { fromStored, toStored } from './stored-json.js';
import type {
  CancelResult,
  ListQuery,
  StepSpec,
  StepsProgress,
  SubmitOptions,
  SubmitResult,
  TaskHandler,
  TaskQueue,
  TaskSteps,
  TaskWorker,
  WorkerOptions,
} from './task-queue.js';
import { QueueFullError, StepsQueued } from './task-queue.js';
import {
  cancelledFailure,
  classifyRunEnd,
  DEFAULT_RETRY_BACKOFF_MS,
  outOfRuns,
  stepsProgress,
  throttledProgress,
  type AbortReason,
  type ProgressUpdate,
} from './worker-policy.js';

export interface SqliteQueueOptions {
  path: string;
  /** A claimed task whose lease is not renewed within this time is taken again by another worker. */
  leaseMs: number;
  /** Runs of one task before it fails for good (a crash counts as a run). */
  maxAttempts: number;
  logger: Logger;
  /** How often an idle worker looks for work queued by other processes. */
  pollMs?: number;
  /** Delay before a task that failed for a transient reason runs again (doubled per attempt). */
  retryBackoffMs?: number;
  /** How long a write waits for another process's transaction before it fails with SQLITE_BUSY (5 s). */
  busyTimeoutMs?: number;
}

interface Row {
  seq: number;
  id: string;
  request: string;
  status: TaskStatus;
  stage: string | null;
  progress: number;
  eta_seconds: number | null;
  early_output: string | null;
  error_code: string | null;
  error_message: string | null;
  output: string | null;
  cancelled: number;
  cancel_requested: number;
  attempts: number;
  run_after: number;
  lease_owner: string | null;
  lease_expires: number | null;
  callback: string | null;
  /** A split task's steps (StepsState), from when it queued them until it ends. */
  steps: string | null;
  created_at: string;
  updated_at: string;
}

/** What a task that queued steps keeps in its row. */
interface StepsState {
  state: unknown;
  progress: StepsProgress;
  /** When the steps were queued (ms). */
  at: number;
}

interface StepRow {
  task_id: string;
  name: string;
  seq: number;
  data: string;
  status: 'queued' | 'processing' | 'completed';
  progress: number;
  output: string | null;
  attempts: number;
  run_after: number;
  lease_owner: string | null;
  lease_expires: number | null;
}

/**
 * The steps of split tasks (TaskSteps), claimed with a lease as tasks are. A task waiting for its steps is
 * `processing` with no lease owner; when its last step completes it becomes claimable again (lease_expires 0).
 */
const stepsSchema = `
CREATE TABLE IF NOT EXISTS steps (
  task_id TEXT NOT NULL,
  name TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'queued',
  progress REAL NOT NULL DEFAULT 0,
  output TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  run_after INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT,
  lease_expires INTEGER,
  PRIMARY KEY (task_id, name)
);
`;

const schema = `
CREATE TABLE IF NOT EXISTS tasks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  request TEXT NOT NULL,
  status TEXT NOT NULL,
  stage TEXT,
  progress REAL NOT NULL DEFAULT 0,
  eta_seconds REAL,
  early_output TEXT,
  error_code TEXT,
  error_message TEXT,
  output TEXT,
  cancelled INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  run_after INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT,
  lease_expires INTEGER,
  idempotency_key TEXT UNIQUE,
  request_hash TEXT,
  callback TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, seq);
`;

/**
 * Task counts by status kept by triggers, so the queue limit on every submit reads four rows, not every task
 * (a database made before the table existed gets it filled once).
 */
const countsSchema = `
CREATE TABLE task_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO task_counts (status, n) SELECT status, COUNT(*) FROM tasks GROUP BY status;
CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
  INSERT INTO task_counts (status, n) VALUES (NEW.status, 1) ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON tasks WHEN OLD.status <> NEW.status BEGIN
  UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
  INSERT INTO task_counts (status, n) VALUES (NEW.status, 1) ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
  UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
END;
`;

/**
 * Erases a task's encryption keys (the paths withoutKeys removes) whatever statement ended it; secure_delete
 * and the next checkpoint (flushErasedKeys) clear the old copies (docs/design-notes.md, "SQLite queue").
 */
const eraseKeysTrigger = `
CREATE TRIGGER IF NOT EXISTS tasks_erase_keys AFTER UPDATE OF status ON tasks
WHEN NEW.status IN ('completed', 'failed') AND json_extract(NEW.request, '$.encryption') IS NOT NULL BEGIN
  UPDATE tasks SET request = json_remove(NEW.request, '$.encryption.key', '$.encryption.keys[0].key',
    '$.encryption.keys[1].key', '$.encryption.keys[2].key', '$.encryption.keys[3].key') WHERE id = NEW.id;
END;
`;

/**
 * Moves the WAL into the database and empties it, so the frames that held a key before its erasure go: run
 * after an encrypted task ends. Best effort: with another process reading, the frames go at a later one.
 */
function flushErasedKeys(db: Database.Database, log: Logger, taskId: string): void {
  try {
    const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    if (result?.busy)
      log.debug({ taskId }, 'WAL checkpoint after erasing keys was busy; a later one takes them');
  } catch (err) {
    log.warn({ taskId, err }, 'could not checkpoint the WAL after erasing keys');
  }
}

/** Prepared statements by SQL text: preparing is most of the cost of a small query in better-sqlite3. */
class StatementCache {
  private readonly statements = new Map<string, Database.Statement>();
  constructor(private readonly db: Database.Database) {}
  prepare(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

/**
 * The embedded durable queue: tasks in one SQLite file (WAL), claimed by one UPDATE with a lease that a dead
 * process leaves to run out, so no two workers, even in two processes, run a task at once.
 */
export class SqliteTaskQueue implements TaskQueue {
  private readonly db: Database.Database;
  /** Shared with this queue's workers. */
  readonly sql: StatementCache;
  private readonly events = new EventEmitter();
  private readonly workers = new Set<SqliteWorker>();
  private closed = false;

  constructor(readonly options: SqliteQueueOptions) {
    mkdirSync(path.dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.sql = new StatementCache(this.db);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // A checkpoint every 40 MB of WAL, not 4 MB: their fsyncs were most of POST /encode's cost
    // (BENCHMARKS.md, "POST /encode and SQLite's checkpoints"). The WAL file stays at most that large.
    this.db.pragma('wal_autocheckpoint = 10000');
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    // Deleted and overwritten content is zeroed, not left in free space: erased keys must be gone.
    this.db.pragma('secure_delete = ON');
    this.db.exec(schema);
    this.db.exec(eraseKeysTrigger);
    // Databases made before a column existed get it added.
    const columns = new Set(
      (this.sql.prepare('PRAGMA table_info(tasks)').all() as { name: string }[]).map((c) => c.name),
    );
    if (!columns.has('eta_seconds')) this.db.exec('ALTER TABLE tasks ADD COLUMN eta_seconds REAL');
    if (!columns.has('early_output')) this.db.exec('ALTER TABLE tasks ADD COLUMN early_output TEXT');
    if (!columns.has('steps')) this.db.exec('ALTER TABLE tasks ADD COLUMN steps TEXT');
    this.db.exec(stepsSchema);
    // The pending callbacks a worker looks for every minute, without reading every finished task.
    this.db.exec(
      "CREATE INDEX IF NOT EXISTS tasks_pending_callbacks ON tasks (seq) WHERE json_extract(callback, '$.status') = 'pending'",
    );
    // Checked and made in one write transaction, so two processes opening one database make it once.
    this.db
      .transaction(() => {
        const exists = this.db
          .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task_counts'")
          .get();
        if (!exists) this.db.exec(countsSchema);
      })
      .immediate();
  }

  async submit(request: TaskRequest, options: SubmitOptions = {}): Promise<SubmitResult> {
    const hash = requestHash(request);
    const now = new Date().toISOString();
    const result = this.db
      .transaction((): SubmitResult => {
        if (options.idempotencyKey) {
          const existing = this.sql
            .prepare('SELECT * FROM tasks WHERE idempotency_key = ?')
            .get(options.idempotencyKey) as (Row & { request_hash: string }) | undefined;
          if (existing) {
            return {
              outcome: existing.request_hash === hash ? 'existing' : 'conflict',
              task: toRecord(existing),
            };
          }
        }
        if (options.maxQueued !== undefined) {
          const queued = this.sql.prepare("SELECT n FROM task_counts WHERE status = 'queued'").get() as
            { n: number } | undefined;
          if ((queued?.n ?? 0) >= options.maxQueued) throw new QueueFullError(queued?.n ?? 0);
        }
        const row = this.sql
          .prepare(
            `INSERT INTO tasks (id, request, status, progress, idempotency_key, request_hash, created_at, updated_at)
           VALUES (?, ?, 'queued', 0, ?, ?, ?, ?) RETURNING *`,
          )
          .get(
            randomUUID(),
            toStored<WireTaskRequest>(request),
            options.idempotencyKey ?? null,
            hash,
            now,
            now,
          ) as Row;
        return { outcome: 'created', task: toRecord(row) };
        // IMMEDIATE: the write lock is taken before the idempotency lookup, so two processes sharing the database
        // wait for each other (busy_timeout) instead of failing when one's read snapshot goes stale.
      })
      .immediate();
    if (result.outcome === 'created') this.events.emit('submitted');
    return result;
  }

  async get(id: string): Promise<TaskRecord | undefined> {
    const row = this.sql.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as Row | undefined;
    return row && this.withSteps(toRecord(row), row);
  }

  /** A split task's record while its steps run: their progress, aggregated. */
  private withSteps(task: TaskRecord, row: Row): TaskRecord {
    if (!row.steps || row.status !== 'processing') return task;
    const { progress, at } = JSON.parse(row.steps) as StepsState;
    const fractions = (
      this.sql.prepare('SELECT status, progress FROM steps WHERE task_id = ?').all(row.id) as {
        status: string;
        progress: number;
      }[]
    ).map((r) => (r.status === 'completed' ? 1 : r.progress));
    const agg = stepsProgress(progress, fractions, at);
    // Once its steps are done the task's own run (the stitch) reports its progress.
    if (row.lease_owner !== null || agg.chunks.done === agg.chunks.total)
      return { ...task, chunks: agg.chunks };
    return {
      ...task,
      stage: agg.stage,
      progress: agg.progress,
      etaSeconds: agg.etaSeconds,
      chunks: agg.chunks,
    };
  }

  async list(query: ListQuery): Promise<{ tasks: TaskRecord[]; nextCursor?: string }> {
    const cursor = query.cursor ? Number(query.cursor) : Number.MAX_SAFE_INTEGER;
    const rows = this.sql
      .prepare(`SELECT * FROM tasks WHERE seq < ? AND (? IS NULL OR status = ?) ORDER BY seq DESC LIMIT ?`)
      .all(
        Number.isFinite(cursor) ? cursor : 0,
        query.status ?? null,
        query.status ?? null,
        query.limit + 1,
      ) as Row[];
    const page = rows.slice(0, query.limit);
    return {
      tasks: page.map(toRecord),
      nextCursor: rows.length > query.limit ? String(page[page.length - 1]!.seq) : undefined,
    };
  }

  async counts(): Promise<Record<TaskStatus, number>> {
    const counts: Record<TaskStatus, number> = { queued: 0, processing: 0, completed: 0, failed: 0 };
    for (const r of this.sql.prepare('SELECT status, n FROM task_counts').all() as {
      status: TaskStatus;
      n: number;
    }[]) {
      counts[r.status] = r.n;
    }
    return counts;
  }

  async position(id: string): Promise<number | undefined> {
    const row = this.sql
      .prepare(
        `SELECT (SELECT COUNT(*) FROM tasks q WHERE q.status = 'queued' AND q.seq < t.seq) + 1 AS position
         FROM tasks t WHERE t.id = ? AND t.status = 'queued'`,
      )
      .get(id) as { position: number } | undefined;
    return row?.position;
  }

  async cancel(id: string): Promise<CancelResult | undefined> {
    const now = new Date().toISOString();
    const endedNow = this.db.transaction(() => {
      // A processing task whose lease lapsed has no live run (its process died): it ends at once too, in one
      // statement with the check, so a worker claiming it meanwhile (same condition) and this never both win.
      const ended = this.sql
        .prepare(
          `UPDATE tasks SET status = 'failed', cancelled = 1, error_code = 'cancelled', error_message = 'cancelled',
             stage = 'cancelled', lease_owner = NULL, lease_expires = NULL, updated_at = ?
           WHERE id = ? AND (status = 'queued' OR (status = 'processing' AND (lease_expires < ? OR lease_owner IS NULL)))`,
        )
        .run(now, id, Date.now());
      if (ended.changes === 1) this.sql.prepare('DELETE FROM steps WHERE task_id = ?').run(id);
      this.sql
        .prepare(
          `UPDATE tasks SET cancel_requested = 1, updated_at = ? WHERE id = ? AND status = 'processing'`,
        )
        .run(now, id);
      return ended.changes === 1;
    })();
    this.events.emit('cancel', id);
    const task = await this.get(id);
    if (endedNow && task?.request.encryption) flushErasedKeys(this.db, this.options.logger, id);
    return task && { task, endedNow };
  }

  async pendingCallbacks(limit: number): Promise<TaskRecord[]> {
    const rows = this.sql
      .prepare(
        `SELECT * FROM tasks WHERE status IN ('completed', 'failed') AND callback IS NOT NULL
           AND json_extract(callback, '$.status') = 'pending' ORDER BY seq LIMIT ?`,
      )
      .all(limit) as Row[];
    return rows.map(toRecord);
  }

  async claimCallback(id: string, expected: CallbackState, next: CallbackState): Promise<boolean> {
    const res = this.sql
      .prepare('UPDATE tasks SET callback = ? WHERE id = ? AND callback = ?')
      .run(toStored<WireCallbackState>(next), id, toStored<WireCallbackState>(expected));
    return res.changes === 1;
  }

  async setCallbackState(id: string, state: CallbackState): Promise<void> {
    this.sql
      .prepare('UPDATE tasks SET callback = ? WHERE id = ?')
      .run(toStored<WireCallbackState>(state), id);
  }

  startWorker(handler: TaskHandler, options: WorkerOptions): TaskWorker {
    if (this.closed) throw new Error('queue is closed');
    const worker = new SqliteWorker(this, this.db, this.events, handler, options);
    this.workers.add(worker);
    worker.start();
    return {
      close: async (graceMs?: number) => {
        await worker.close(graceMs);
        this.workers.delete(worker);
      },
    };
  }

  async check(): Promise<void> {
    this.sql.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.workers].map((w) => w.close(0)));
    this.db.close();
  }
}

interface Running {
  task: TaskRecord;
  controller: AbortController;
  /** Why the signal was aborted: the task was cancelled, its lease was lost, or the worker stops. */
  abortReason?: AbortReason;
  done: Promise<void>;
}

/** Step progress is written at most this often. */
const PROGRESS_WRITE_MS = 500;

class SqliteWorker {
  private readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly running = new Map<string, Running>();
  /** Steps running here, by `<task id>/<step name>`. */
  private readonly runningSteps = new Map<string, Running & { step: StepRow }>();
  private closing = false;
  private pollTimer?: NodeJS.Timeout;
  private leaseTimer?: NodeJS.Timeout;
  private closePromise?: Promise<void>;
  private readonly log: Logger;
  private readonly sql: StatementCache;
  private readonly onSubmitted = () => this.guarded('claim tasks', () => this.pump());
  private readonly onCancel = (id: string) =>
    this.guarded('check a cancel', () => {
      this.checkCancellation(id);
      this.checkStepsCancellation(id);
    });

  constructor(
    private readonly queue: SqliteTaskQueue,
    private readonly db: Database.Database,
    private readonly events: EventEmitter,
    private readonly handler: TaskHandler,
    private readonly options: WorkerOptions,
  ) {
    this.log = queue.options.logger;
    this.sql = queue.sql;
  }

  start(): void {
    this.events.on('submitted', this.onSubmitted);
    this.events.on('cancel', this.onCancel);
    this.pollTimer = setInterval(
      () => this.guarded('claim tasks', () => this.pump()),
      this.queue.options.pollMs ?? 1000,
    );
    // Renewal also reads the cancel flag set by an API in another process: at most 2 s apart, so a cancel
    // stops a running task within seconds whatever the lease length.
    this.leaseTimer = setInterval(
      () => this.guarded('renew leases', () => this.renewLeases()),
      Math.min(2000, Math.max(500, this.queue.options.leaseMs / 3)),
    );
    this.guarded('claim tasks', () => this.pump());
  }

  /**
   * A write from a timer, event or child's output: a failure (disk full, busy, I/O) is logged rather than
   * crash the process serving every other task; what it did not record, the lease recovers (it runs again).
   */
  private guarded(what: string, write: () => void): void {
    try {
      write();
    } catch (err) {
      this.log.error({ err }, `the task database failed to ${what}`);
    }
  }

  /** Claims tasks while there are free slots. */
  private pump(): void {
    while (!this.closing && this.running.size + this.runningSteps.size < this.options.concurrency) {
      // The steps of a task already begun go before tasks not yet begun.
      const step = this.options.stepHandler ? this.claimStep() : undefined;
      if (step) {
        this.runStep(step);
        continue;
      }
      const task = this.claim();
      if (!task) return;
      this.run(task);
    }
  }

  private claim(): TaskRecord | undefined {
    const now = Date.now();
    const row = this.sql
      .prepare(
        `UPDATE tasks SET status = 'processing', stage = 'starting', progress = 0, eta_seconds = NULL, early_output = NULL, lease_owner = ?, lease_expires = ?,
           attempts = attempts + 1, updated_at = ?
         WHERE seq = (SELECT seq FROM tasks
                      WHERE (status = 'queued' AND run_after <= ?) OR (status = 'processing' AND lease_expires < ?)
                      ORDER BY seq LIMIT 1)
         RETURNING *`,
      )
      .get(this.owner, now + this.queue.options.leaseMs, new Date(now).toISOString(), now, now) as
      Row | undefined;
    if (!row) return undefined;
    const task = toRecord(row);
    if (row.cancel_requested) {
      this.finish(task, cancelledFailure, true);
      this.abandoned(task, task.attempts - 1);
      return this.claim();
    }
    if (task.attempts > this.queue.options.maxAttempts) {
      // Its earlier runs died with their process (crash, OOM kill): do not try it forever.
      this.finish(task, outOfRuns(task.attempts - 1));
      this.abandoned(task, task.attempts - 1);
      return this.claim();
    }
    if (task.attempts > 1) this.log.warn({ taskId: task.id, attempt: task.attempts }, 'task claimed again');
    return task;
  }

  private run(task: TaskRecord): void {
    const controller = new AbortController();
    const entry: Running = { task, controller, done: Promise.resolve() };
    this.running.set(task.id, entry);
    const reportProgress = throttledProgress((update) =>
      this.guarded('record progress', () => this.writeProgress(task, update)),
    );
    entry.done = (async () => {
      try {
        let output: TaskOutput;
        try {
          output = await this.handler(task, {
            signal: controller.signal,
            attempt: task.attempts,
            reportProgress,
            steps: this.stepsOf(task),
          });
        } catch (err) {
          if (err instanceof StepsQueued) {
            this.log.info({ taskId: task.id, steps: err.count }, 'task split: its steps are queued');
            return;
          }
          this.guarded('record a failed run', () => this.fail(entry, err));
          return;
        }
        // Outside the try above: an unstored result must not fail a published package. Retried while the
        // lease is ours; after that it runs out and the task runs again.
        for (let attempt = 1; ; attempt++) {
          try {
            if (this.complete(task, output))
              this.guarded('report a settled task', () => this.settled(task.id));
            return;
          } catch (err) {
            this.log.error(
              { err, taskId: task.id, attempt },
              'the task database failed to record a completed task',
            );
            if (attempt >= 5) return;
            await new Promise((r) => setTimeout(r, 1000));
          }
        }
      } finally {
        this.running.delete(task.id);
        setImmediate(() => this.guarded('claim tasks', () => this.pump()));
      }
    })();
  }

  /** The TaskSteps of a run: `done` when the task's steps have all completed. */
  private stepsOf(task: TaskRecord): TaskSteps {
    const row = this.sql.prepare('SELECT steps FROM tasks WHERE id = ?').get(task.id) as
      { steps: string | null } | undefined;
    let done: TaskSteps['done'];
    if (row?.steps) {
      const steps = this.sql
        .prepare('SELECT name, status, output FROM steps WHERE task_id = ? ORDER BY seq')
        .all(task.id) as Pick<StepRow, 'name' | 'status' | 'output'>[];
      if (steps.length && steps.every((st) => st.status === 'completed')) {
        done = {
          state: (JSON.parse(row.steps) as StepsState).state,
          outputs: Object.fromEntries(steps.map((st) => [st.name, JSON.parse(st.output ?? 'null')])),
        };
      }
    }
    return {
      done,
      queue: async (steps: StepSpec[], state: unknown, progress: StepsProgress) => {
        const now = Date.now();
        const queued = this.db.transaction(() => {
          const insert = this.sql.prepare(
            'INSERT OR IGNORE INTO steps (task_id, name, seq, data) VALUES (?, ?, ?, ?)',
          );
          steps.forEach((st, i) => insert.run(task.id, st.name, i, JSON.stringify(st.data ?? null)));
          // This run does not count as an attempt: the task's next run (the stitch) is its first full one.
          return this.sql
            .prepare(
              `UPDATE tasks SET steps = ?, stage = ?, progress = ?, eta_seconds = NULL, lease_owner = NULL,
                 lease_expires = NULL, attempts = attempts - 1, updated_at = ?
               WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
            )
            .run(
              JSON.stringify({ state, progress, at: now } satisfies StepsState),
              progress.stage,
              progress.from,
              new Date(now).toISOString(),
              task.id,
              this.owner,
            ).changes;
        })();
        if (queued !== 1) throw new Error('lease_lost');
        this.releaseIfStepsDone(task.id);
        this.events.emit('submitted');
        throw new StepsQueued(steps.length);
      },
    };
  }

  /** A task whose steps have all completed becomes claimable again, for its last run. */
  private releaseIfStepsDone(taskId: string): void {
    const res = this.sql
      .prepare(
        `UPDATE tasks SET lease_expires = 0, updated_at = ?
         WHERE id = ? AND status = 'processing' AND lease_owner IS NULL AND steps IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM steps WHERE task_id = ? AND status <> 'completed')`,
      )
      .run(new Date().toISOString(), taskId, taskId);
    if (res.changes === 1) this.events.emit('submitted');
  }

  private claimStep(): StepRow | undefined {
    const now = Date.now();
    const step = this.sql
      .prepare(
        `UPDATE steps SET status = 'processing', progress = 0, attempts = attempts + 1, lease_owner = ?,
           lease_expires = ?
         WHERE rowid = (SELECT s.rowid FROM steps s JOIN tasks t ON t.id = s.task_id
                        WHERE t.status = 'processing' AND t.cancel_requested = 0
                          AND ((s.status = 'queued' AND s.run_after <= ?) OR (s.status = 'processing' AND s.lease_expires < ?))
                        ORDER BY t.seq, s.seq LIMIT 1)
         RETURNING *`,
      )
      .get(this.owner, now + this.queue.options.leaseMs, now, now) as StepRow | undefined;
    if (!step) return undefined;
    if (step.attempts > this.queue.options.maxAttempts) {
      this.failTaskOfStep(step, {
        code: 'worker_lost',
        message: `its ${step.name} ran ${step.attempts - 1} times without finishing; giving up`,
      });
      return this.claimStep();
    }
    if (step.attempts > 1)
      this.log.warn({ taskId: step.task_id, step: step.name, attempt: step.attempts }, 'step claimed again');
    return step;
  }

  private runStep(step: StepRow): void {
    const key = `${step.task_id}/${step.name}`;
    const controller = new AbortController();
    const row = this.sql.prepare('SELECT * FROM tasks WHERE id = ?').get(step.task_id) as Row;
    const task = toRecord(row);
    const entry: Running & { step: StepRow } = { task, step, controller, done: Promise.resolve() };
    this.runningSteps.set(key, entry);
    let lastWrite = 0;
    const reportProgress = (f: number) => {
      const now = Date.now();
      if (now - lastWrite < PROGRESS_WRITE_MS) return;
      lastWrite = now;
      this.guarded('record progress', () => {
        this.sql
          .prepare('UPDATE steps SET progress = ? WHERE task_id = ? AND name = ? AND lease_owner = ?')
          .run(Math.max(0, Math.min(0.999, f)), step.task_id, step.name, this.owner);
      });
    };
    const spec: StepSpec = { name: step.name, data: JSON.parse(step.data) };
    entry.done = (async () => {
      try {
        let output: unknown;
        try {
          output = await this.options.stepHandler!(task, spec, {
            signal: controller.signal,
            attempt: step.attempts,
            reportProgress,
          });
        } catch (err) {
          this.guarded('record a failed step', () => this.failStep(entry, err));
          return;
        }
        this.guarded('record a completed step', () => {
          const res = this.sql
            .prepare(
              `UPDATE steps SET status = 'completed', progress = 1, output = ?, lease_owner = NULL, lease_expires = NULL
               WHERE task_id = ? AND name = ? AND lease_owner = ?`,
            )
            .run(JSON.stringify(output ?? null), step.task_id, step.name, this.owner);
          if (res.changes === 1) this.releaseIfStepsDone(step.task_id);
        });
      } finally {
        this.runningSteps.delete(key);
        setImmediate(() => this.guarded('claim tasks', () => this.pump()));
      }
    })();
  }

  private failStep(entry: Running & { step: StepRow }, err: unknown): void {
    const { step } = entry;
    const end = classifyRunEnd({
      err,
      abortReason: entry.abortReason,
      attempt: step.attempts,
      maxAttempts: this.queue.options.maxAttempts,
      retryBackoffMs: this.queue.options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS,
    });
    const log = this.log.child({ taskId: step.task_id, step: step.name });
    if (end.kind === 'hand_back') {
      if (end.reason === 'shutdown') {
        this.sql
          .prepare(
            `UPDATE steps SET status = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_expires = NULL
             WHERE task_id = ? AND name = ? AND lease_owner = ?`,
          )
          .run(step.task_id, step.name, this.owner);
      }
      log.info({ reason: end.reason }, 'step handed back');
      return;
    }
    if (end.kind === 'retry') {
      this.sql
        .prepare(
          `UPDATE steps SET status = 'queued', run_after = ?, lease_owner = NULL, lease_expires = NULL
           WHERE task_id = ? AND name = ? AND lease_owner = ?`,
        )
        .run(Date.now() + end.delayMs, step.task_id, step.name, this.owner);
      log.warn({ code: end.failure.code, retryInMs: end.delayMs }, 'step will be retried');
      return;
    }
    if (end.failure.code === 'internal') log.error({ err }, 'step failed with an unexpected error');
    this.failTaskOfStep(step, { code: end.failure.code, message: end.failure.message });
  }

  /** A step that failed for good fails its task, with its reason; the task's other steps stop. */
  private failTaskOfStep(step: StepRow, error: { code: FailureCode; message: string }): void {
    const cancelled = error.code === 'cancelled';
    const res = this.db.transaction(() => {
      const r = this.sql
        .prepare(
          `UPDATE tasks SET status = 'failed', stage = ?, error_code = ?, error_message = ?, cancelled = ?, steps = NULL,
             lease_owner = NULL, lease_expires = NULL, updated_at = ? WHERE id = ? AND status = 'processing'`,
        )
        .run(
          cancelled ? 'cancelled' : 'failed',
          error.code,
          error.message,
          cancelled ? 1 : 0,
          new Date().toISOString(),
          step.task_id,
        );
      this.sql.prepare('DELETE FROM steps WHERE task_id = ?').run(step.task_id);
      return r.changes;
    })();
    if (res === 1) {
      this.log.warn({ taskId: step.task_id, step: step.name, code: error.code }, 'task failed in a step');
      this.settled(step.task_id);
    }
  }

  private writeProgress(task: TaskRecord, update: ProgressUpdate): void {
    this.sql
      .prepare(
        `UPDATE tasks SET stage = ?, progress = ?, eta_seconds = ?, early_output = ?, updated_at = ?
           WHERE id = ? AND lease_owner = ? AND status = 'processing'`,
      )
      .run(
        update.stage,
        update.progress,
        update.etaSeconds ?? null,
        update.earlyOutput ? toStored<WireEarlyOutput>(update.earlyOutput) : null,
        new Date(update.at).toISOString(),
        task.id,
        this.owner,
      );
  }

  /** Records the result; says whether it was this worker's to record (its lease still held). */
  private complete(task: TaskRecord, output: TaskOutput): boolean {
    const res = this.sql
      .prepare(
        `UPDATE tasks SET status = 'completed', stage = 'done', progress = 100, output = ?, error_code = NULL,
           error_message = NULL, steps = NULL, lease_owner = NULL, lease_expires = NULL, updated_at = ?
         WHERE id = ? AND lease_owner = ?`,
      )
      .run(toStored<WireTaskOutput>(output), new Date().toISOString(), task.id, this.owner);
    if (res.changes === 1) this.sql.prepare('DELETE FROM steps WHERE task_id = ?').run(task.id);
    return res.changes === 1;
  }

  private fail(entry: Running, err: unknown): void {
    const { task } = entry;
    const end = classifyRunEnd({
      err,
      abortReason: entry.abortReason,
      attempt: task.attempts,
      maxAttempts: this.queue.options.maxAttempts,
      retryBackoffMs: this.queue.options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS,
    });
    if (end.kind === 'hand_back') {
      if (end.reason === 'shutdown') {
        // Hand it back untouched: this run does not count as an attempt.
        this.sql
          .prepare(
            `UPDATE tasks SET status = 'queued', stage = 'requeued', progress = 0, attempts = attempts - 1,
               lease_owner = NULL, lease_expires = NULL, updated_at = ? WHERE id = ? AND lease_owner = ?`,
          )
          .run(new Date().toISOString(), task.id, this.owner);
      }
      this.log.info({ taskId: task.id, reason: end.reason }, 'task handed back');
      return;
    }
    const { failure } = end;
    if (failure.code === 'internal')
      this.log.error({ taskId: task.id, err }, 'task failed with an unexpected error');
    if (end.kind === 'retry') {
      this.sql
        .prepare(
          `UPDATE tasks SET status = 'queued', stage = 'retrying', progress = 0, eta_seconds = NULL, early_output = NULL,
             error_code = ?, error_message = ?, run_after = ?, lease_owner = NULL, lease_expires = NULL, updated_at = ? WHERE id = ? AND lease_owner = ?`,
        )
        .run(
          failure.code,
          failure.message,
          Date.now() + end.delayMs,
          new Date().toISOString(),
          task.id,
          this.owner,
        );
      this.log.warn({ taskId: task.id, code: failure.code, retryInMs: end.delayMs }, 'task will be retried');
      return;
    }
    this.finish(task, { code: failure.code, message: failure.message }, failure.code === 'cancelled');
  }

  private finish(task: TaskRecord, error: { code: FailureCode; message: string }, cancelled = false): void {
    const res = this.sql
      .prepare(
        `UPDATE tasks SET status = 'failed', stage = ?, error_code = ?, error_message = ?, cancelled = ?, steps = NULL,
           lease_owner = NULL, lease_expires = NULL, updated_at = ? WHERE id = ? AND lease_owner = ?`,
      )
      .run(
        cancelled ? 'cancelled' : 'failed',
        error.code,
        error.message,
        cancelled ? 1 : 0,
        new Date().toISOString(),
        task.id,
        this.owner,
      );
    if (res.changes === 1) {
      this.sql.prepare('DELETE FROM steps WHERE task_id = ?').run(task.id);
      this.settled(task.id);
    }
  }

  /** A task ended here without running, after `earlierRuns` runs: see `WorkerOptions.onAbandoned`. */
  private abandoned(task: TaskRecord, earlierRuns: number): void {
    if (earlierRuns < 1 || !this.options.onAbandoned) return;
    try {
      this.options.onAbandoned(task, earlierRuns);
    } catch (err) {
      this.log.error({ taskId: task.id, err }, 'onAbandoned hook failed');
    }
  }

  private settled(id: string): void {
    const row = this.sql.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as Row | undefined;
    if (!row) return;
    if (row.request.includes('"encryption"')) flushErasedKeys(this.db, this.log, id);
    if (!this.options.onSettled) return;
    try {
      this.options.onSettled(toRecord(row));
    } catch (err) {
      this.log.error({ taskId: id, err }, 'onSettled hook failed');
    }
  }

  private renewLeases(): void {
    const expires = Date.now() + this.queue.options.leaseMs;
    for (const [id, entry] of this.running) {
      const row = this.sql
        .prepare(
          `UPDATE tasks SET lease_expires = ? WHERE id = ? AND lease_owner = ? AND status = 'processing'
           RETURNING cancel_requested`,
        )
        .get(expires, id, this.owner) as { cancel_requested: number } | undefined;
      if (!row) this.abort(entry, 'lease_lost');
      else if (row.cancel_requested) this.abort(entry, 'cancelled');
    }
    for (const entry of this.runningSteps.values()) {
      const { task_id: taskId, name } = entry.step;
      const renewed = this.sql
        .prepare(`UPDATE steps SET lease_expires = ? WHERE task_id = ? AND name = ? AND lease_owner = ?`)
        .run(expires, taskId, name, this.owner).changes;
      if (!renewed) {
        // Gone with its task (cancelled, or failed in another step), or taken by another worker.
        const task = this.sql.prepare('SELECT status FROM tasks WHERE id = ?').get(taskId) as
          { status: string } | undefined;
        this.abort(entry, task?.status === 'processing' ? 'lease_lost' : 'cancelled');
        continue;
      }
      const task = this.sql.prepare('SELECT status, cancel_requested FROM tasks WHERE id = ?').get(taskId) as
        { status: string; cancel_requested: number } | undefined;
      if (!task || task.status !== 'processing' || task.cancel_requested) this.abort(entry, 'cancelled');
    }
  }

  private checkCancellation(id: string): void {
    const entry = this.running.get(id);
    if (!entry) return;
    const row = this.sql.prepare('SELECT cancel_requested FROM tasks WHERE id = ?').get(id) as
      { cancel_requested: number } | undefined;
    if (row?.cancel_requested) this.abort(entry, 'cancelled');
  }

  /** A cancel ends a task waiting for its steps at once: the steps running here stop. */
  private checkStepsCancellation(id: string): void {
    for (const entry of this.runningSteps.values()) {
      if (entry.step.task_id !== id) continue;
      const task = this.sql.prepare('SELECT status, cancel_requested FROM tasks WHERE id = ?').get(id) as
        { status: string; cancel_requested: number } | undefined;
      if (!task || task.status !== 'processing' || task.cancel_requested) this.abort(entry, 'cancelled');
    }
  }

  private abort(entry: Running, reason: AbortReason): void {
    if (entry.abortReason) return;
    entry.abortReason = reason;
    this.log.info({ taskId: entry.task.id, reason }, 'stopping task');
    entry.controller.abort(new Error(reason));
  }

  close(graceMs = 0): Promise<void> {
    this.closePromise ??= (async () => {
      this.closing = true;
      clearInterval(this.pollTimer);
      this.events.off('submitted', this.onSubmitted);
      this.events.off('cancel', this.onCancel);
      const entries = () => [...this.running.values(), ...this.runningSteps.values()];
      const all = () => Promise.allSettled(entries().map((r) => r.done));
      if (entries().length && graceMs > 0) await waitAtMost(all(), graceMs);
      for (const entry of entries()) this.abort(entry, 'shutdown');
      await all();
      clearInterval(this.leaseTimer);
    })();
    return this.closePromise;
  }
}

/**
 * A task's record from its row. A processing task whose lease lapsed (its process died) is shown queued
 * again (`requeued`), due since its lease lapsed: the next free worker claims it.
 */
function toRecord(row: Row): TaskRecord {
  // A task whose steps are done waits for its last run with no owner: not lapsed.
  if (
    row.status === 'processing' &&
    row.lease_owner !== null &&
    row.lease_expires !== null &&
    row.lease_expires < Date.now()
  ) {
    return {
      ...toRecord({ ...row, status: 'queued', stage: 'requeued', progress: 0 }),
      nextRunAt: new Date(Math.max(row.lease_expires, row.run_after)).toISOString(),
    };
  }
  return {
    id: row.id,
    request: fromStored<WireTaskRequest>(row.request),
    status: row.status,
    stage: row.stage ?? undefined,
    progress: row.progress,
    etaSeconds: row.status === 'processing' && row.eta_seconds !== null ? row.eta_seconds : undefined,
    earlyOutput:
      row.status === 'processing' && row.early_output
        ? fromStored<WireEarlyOutput>(row.early_output)
        : undefined,
    error:
      row.error_code && (row.status === 'failed' || row.status === 'queued')
        ? { code: row.error_code as FailureCode, message: row.error_message ?? '' }
        : undefined,
    nextRunAt:
      row.status === 'queued' && row.stage === 'retrying' ? new Date(row.run_after).toISOString() : undefined,
    output: row.output ? fromStored<WireTaskOutput>(row.output) : undefined,
    cancelled: row.cancelled ? true : undefined,
    attempts: row.attempts,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    callback: row.callback ? fromStored<WireCallbackState>(row.callback) : undefined,
  };
}
