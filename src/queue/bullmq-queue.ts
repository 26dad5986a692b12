import {
  Job,
  Queue,
  UnrecoverableError,
  WaitingChildrenError,
  WaitingError,
  Worker,
  type JobState,
  type Processor,
} from 'bullmq';
import { Redis } from 'ioredis';
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { QueueSettings } from './queue-settings.js';
import { failureCodes, TaskFailure, type FailureCode } from '../domain/failures.js';
import { waitAtMost } from '../process/wait-at-most.js';
import {
  requestHash,
  requestWithoutKeys,
  type CallbackState,
  type TaskRecord,
  type TaskRequest,
  type TaskStatus,
  type WireCallbackState,
  type WireEarlyOutput,
  type WireTaskOutput,
  type WireTaskRequest,
} from '../domain/task.js';
import { fromWire, toWire } from '../domain/schemas/wire.js';
import { fromStored, recordFromStored, recordToStored, toStored } from './stored-json.js';
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
  PROGRESS_WRITE_INTERVAL_MS,
  stepsProgress,
  throttledProgress,
  type AbortReason,
  type ProgressUpdate,
} from './worker-policy.js';

export type BullMqSettings = Extract<QueueSettings, { kind: 'redis' }>;

export interface BullMqQueueOptions {
  /** Delay before a task that failed for a transient reason runs again (doubled per attempt). */
  retryBackoffMs?: number;
  /** How often a worker looks for cancellation requests of the tasks it runs. */
  cancelPollMs?: number;
}

/** What a BullMQ job carries: the request, and what tells a repeated submission from a new one. */
interface JobData {
  /** In wire casing, as jobs queued before the domain was camelCase (see stored-json.ts). */
  request: WireTaskRequest;
  requestHash: string;
  /** Random per submit call: the call whose nonce is stored is the one that created the job. */
  nonce: string;
  /** Set when the task queued its steps (children in the steps queue): what its last run gets back. */
  split?: { state: unknown; progress: StepsProgress; names: string[]; at: number };
}

/** A step's job: a child of its task's job, in the steps queue. */
interface StepJobData {
  taskId: string;
  step: StepSpec;
}
type StepJob = Job<StepJobData, unknown>;

/** A job's progress: the policy's update, whose `at` gives `updatedAt`; its early output in wire casing. */
type ProgressData = Omit<ProgressUpdate, 'earlyOutput'> & { earlyOutput?: WireEarlyOutput };

/** Fields of a task that BullMQ's job does not hold, kept in one hash per task. */
interface TaskMeta {
  callback?: string;
  /** '1' once a cancellation was asked for while the task ran. */
  cancel?: string;
  /** The final record of a task cancelled while queued (its job is removed from the queue). */
  record?: string;
  requestHash?: string;
}

type TaskJob = Job<JobData, WireTaskOutput>;

const queueName = 'tasks';
const jobName = 'convert';
/** The steps of split tasks (chunks), children of their task's job. */
const stepsQueueName = 'steps';
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The scale-out queue: a task is a BullMQ job (id, state, locks, retries, retention are BullMQ's); this
 * adapter adds only what BullMQ has no place for (docs/design-notes.md, "BullMQ adapter").
 */
export class BullMqTaskQueue implements TaskQueue {
  private readonly queue: Queue<JobData, WireTaskOutput>;
  /** Shared with this queue's workers, which add the steps of the tasks they split. */
  readonly stepsQueue: Queue<StepJobData, unknown>;
  private readonly redis: Redis;
  private readonly base: string;
  private readonly workers = new Set<BullMqWorker>();
  private closing?: Promise<void>;

  constructor(
    readonly settings: BullMqSettings,
    readonly logger: Logger,
    readonly options: BullMqQueueOptions = {},
  ) {
    // Commands fail within about a second while Redis is away, so the API answers 503 instead of hanging
    // (ioredis alone retries forever, up to 2 s apart).
    this.redis = new Redis(settings.url, {
      maxRetriesPerRequest: 2,
      retryStrategy: (times) => Math.min(times * 100, 500),
    });
    const warn = repeatLimited(logger);
    this.redis.on('error', (err) => warn('redis connection error', err));
    this.base = `${settings.prefix}:${queueName}`;
    this.queue = new Queue<JobData, WireTaskOutput>(queueName, {
      connection: this.redis,
      prefix: settings.prefix,
      defaultJobOptions: {
        attempts: settings.maxAttempts,
        // BullMQ's exponential backoff waits as worker-policy's retryDelayMs says.
        backoff: { type: 'exponential', delay: options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS },
        removeOnComplete: { age: settings.retentionSeconds },
        removeOnFail: { age: settings.retentionSeconds },
      },
    });
    this.queue.on('error', (err) => warn('queue error', err));
    this.stepsQueue = new Queue<StepJobData, unknown>(stepsQueueName, {
      connection: this.redis,
      prefix: settings.prefix,
      defaultJobOptions: {
        attempts: settings.maxAttempts,
        backoff: { type: 'exponential', delay: options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS },
        removeOnComplete: { age: settings.retentionSeconds },
        removeOnFail: { age: settings.retentionSeconds },
      },
    });
    this.stepsQueue.on('error', (err) => warn('queue error', err));
  }

  private key(name: 'index' | 'seq' | 'cancelled' | 'callbacks'): string {
    return `${this.base}:task-${name}`;
  }

  /** A split task's steps' progress: one field per step, 0..1 (1 once done). */
  stepsKey(id: string): string {
    return `${this.base}:task-steps:${id}`;
  }

  /** Records a step's progress (0..1) for its task's aggregate. */
  async stepProgress(taskId: string, name: string, fraction: number): Promise<void> {
    await this.redis
      .multi()
      .hset(this.stepsKey(taskId), name, String(fraction))
      .expire(this.stepsKey(taskId), this.settings.retentionSeconds)
      .exec();
  }

  /** Asks the running steps of a task to stop (it failed in another step). */
  async stopSteps(taskId: string): Promise<void> {
    await this.redis
      .multi()
      .hset(this.metaKey(taskId), 'stop', '1')
      .expire(this.metaKey(taskId), this.settings.retentionSeconds)
      .exec();
  }

  /** A split task's aggregate while its steps run, from their recorded progress. */
  private async withSteps(
    record: TaskRecord,
    job: TaskJob,
    state: JobState | 'unknown',
  ): Promise<TaskRecord> {
    const split = job.data.split;
    if (!split || record.status !== 'processing') return record;
    const fields = await this.redis.hgetall(this.stepsKey(record.id));
    const fractions = split.names.map((n) => Number(fields[n] ?? 0));
    const agg = stepsProgress(split.progress, fractions, split.at);
    if (state !== 'waiting-children') return { ...record, chunks: agg.chunks };
    return {
      ...record,
      stage: agg.stage,
      progress: agg.progress,
      etaSeconds: agg.etaSeconds,
      chunks: agg.chunks,
    };
  }

  private metaKey(id: string): string {
    return `${this.base}:task-meta:${id}`;
  }

  async submit(request: TaskRequest, options: SubmitOptions = {}): Promise<SubmitResult> {
    const hash = requestHash(request);
    const id = options.idempotencyKey ? idFromKey(options.idempotencyKey) : randomUUID();
    if (options.idempotencyKey) {
      const meta = (await this.redis.hgetall(this.metaKey(id))) as TaskMeta;
      if (meta.record) {
        const task = await this.get(id);
        if (task) return { outcome: meta.requestHash === hash ? 'existing' : 'conflict', task };
      }
    }
    // A key whose job exists gets that job back below, full queue or not.
    const known = !!options.idempotencyKey && (await this.queue.getJobState(id)) !== 'unknown';
    if (options.maxQueued !== undefined && !known) {
      const { queued } = await this.counts();
      if (queued >= options.maxQueued) throw new QueueFullError(queued);
    }
    const nonce = randomUUID();
    // With a jobId that exists already, BullMQ keeps the stored job and adds nothing.
    await this.queue.add(
      jobName,
      { request: toWire<WireTaskRequest>(request), requestHash: hash, nonce },
      { jobId: id },
    );
    let outcome: SubmitResult['outcome'] = 'created';
    if (options.idempotencyKey) {
      const stored = (await Job.fromId(this.queue, id)) as TaskJob | undefined;
      if (stored && stored.data.nonce !== nonce) {
        outcome = stored.data.requestHash === hash ? 'existing' : 'conflict';
      } else {
        // A cancel may have removed this key's job between the look above and the add: its record stands and
        // the new job is a stray (docs/design-notes.md, "BullMQ adapter").
        const meta = (await this.redis.hgetall(this.metaKey(id))) as TaskMeta;
        if (meta.record) {
          await this.queue
            .remove(id)
            .catch((err: unknown) => this.logger.warn({ taskId: id, err }, 'could not remove a stray job'));
          const task = await this.get(id);
          if (task) return { outcome: meta.requestHash === hash ? 'existing' : 'conflict', task };
        }
      }
    }
    if (outcome === 'created') {
      const seq = await this.redis.incr(this.key('seq'));
      await this.redis.zadd(this.key('index'), 'NX', seq, id);
      await this.pruneIndex();
    }
    const task = await this.get(id);
    if (!task) throw new Error('the task just submitted is missing');
    return { outcome, task };
  }

  async get(id: string): Promise<TaskRecord | undefined> {
    if (!uuidPattern.test(id)) return undefined;
    // The state is read before the job: a job read later can only be newer, so a final state always comes
    // with its result.
    const [state, meta] = await Promise.all([
      this.queue.getJobState(id),
      this.redis.hgetall(this.metaKey(id)) as Promise<TaskMeta>,
    ]);
    const job = state === 'unknown' ? undefined : ((await Job.fromId(this.queue, id)) as TaskJob | undefined);
    if (!job) return meta.record ? withCallback(recordFromStored(meta.record), meta) : undefined;
    const record = toRecord(job, state, meta, this.settings.maxAttempts, await this.nextRun(id, state));
    return this.withSteps(record, job, state);
  }

  /** When a queued-again task runs next: a retry when its backoff ends; a lapsed lock within one lease. */
  private async nextRun(id: string, state: JobState | 'unknown'): Promise<NextRun> {
    if (state === 'delayed') {
      const score = await this.redis.zscore(this.queue.keys.delayed!, id);
      // BullMQ scores a delayed job by its due time × 4096 (plus a counter).
      return score === null ? {} : { at: Math.floor(Number(score) / 0x1000) };
    }
    if (state !== 'active' || (await this.redis.exists(`${this.base}:${id}:lock`))) return {};
    // Finished between the two looks: not lapsed.
    if ((await this.queue.getJobState(id)) !== 'active') return {};
    return { lapsed: true, at: Date.now() + this.settings.leaseMs };
  }

  async list(query: ListQuery): Promise<{ tasks: TaskRecord[]; nextCursor?: string }> {
    const tasks: TaskRecord[] = [];
    const gone: string[] = [];
    let max = '+inf';
    if (query.cursor !== undefined) {
      if (!/^\d+$/.test(query.cursor)) return { tasks };
      max = `(${query.cursor}`;
    }
    const batch = Math.max(20, query.limit * 2);
    let lastSeq = '';
    try {
      for (;;) {
        const rows = await this.redis.zrevrangebyscore(
          this.key('index'),
          max,
          '-inf',
          'WITHSCORES',
          'LIMIT',
          0,
          batch,
        );
        const ids = rows.filter((_, i) => i % 2 === 0);
        const records = await Promise.all(ids.map((id) => this.get(id)));
        for (let i = 0; i < ids.length; i++) {
          const record = records[i];
          if (!record) {
            gone.push(ids[i]!);
            continue;
          }
          if (query.status && record.status !== query.status) continue;
          if (tasks.length === query.limit) return { tasks, nextCursor: lastSeq };
          tasks.push(record);
          lastSeq = rows[i * 2 + 1]!;
        }
        if (ids.length < batch) return { tasks };
        max = `(${rows[rows.length - 1]}`;
      }
    } finally {
      // Tasks removed by retention leave their index entry behind until a listing passes over it.
      if (gone.length) {
        await this.redis
          .zrem(this.key('index'), ...gone)
          .catch((err: unknown) => this.logger.warn({ err }, 'could not prune the task index'));
      }
    }
  }

  /**
   * Drops the oldest index entries whose task is gone (removed by retention). A few per submission keep the
   * index as long as the retained tasks, even when nobody lists them.
   */
  private async pruneIndex(count = 3): Promise<void> {
    try {
      const oldest = await this.redis.zrange(this.key('index'), '0', String(count - 1));
      if (oldest.length === 0) return;
      const pipeline = this.redis.pipeline();
      for (const id of oldest) pipeline.exists(`${this.base}:${id}`, this.metaKey(id));
      const results = (await pipeline.exec()) ?? [];
      const gone = oldest.filter((_, i) => results[i]?.[1] === 0);
      if (gone.length) await this.redis.zrem(this.key('index'), ...gone);
    } catch (err) {
      this.logger.warn({ err }, 'could not prune the task index');
    }
  }

  async counts(): Promise<Record<TaskStatus, number>> {
    const c = await this.queue.getJobCounts(
      'waiting',
      'prioritized',
      'delayed',
      'waiting-children',
      'active',
      'completed',
      'failed',
    );
    await this.redis.zremrangebyscore(
      this.key('cancelled'),
      '-inf',
      Date.now() - this.settings.retentionSeconds * 1000,
    );
    const cancelled = await this.redis.zcard(this.key('cancelled'));
    return {
      queued: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0),
      // A split task waits for its steps (chunks) as BullMQ's waiting-children: it is being processed.
      processing: (c.active ?? 0) + (c['waiting-children'] ?? 0),
      completed: c.completed ?? 0,
      failed: (c.failed ?? 0) + cancelled,
    };
  }

  async position(id: string): Promise<number | undefined> {
    if (!uuidPattern.test(id)) return undefined;
    // BullMQ adds to the left of its wait list and workers take from the right.
    const wait = this.queue.keys.wait!;
    const [index, length] = await Promise.all([this.redis.lpos(wait, id), this.redis.llen(wait)]);
    return index === null ? undefined : length - index;
  }

  async cancel(id: string): Promise<CancelResult | undefined> {
    const task = await this.get(id);
    if (!task) return undefined;
    if (task.status === 'completed' || task.status === 'failed') return { task, endedNow: false };
    // Queued, or its run lost with its worker (lock lapsed: no one runs it): it ends here, at once.
    if (task.status === 'queued') {
      const now = new Date().toISOString();
      const record: TaskRecord = {
        ...task,
        // The record outlives the job (removed below), and the task has ended: no key in it.
        request: requestWithoutKeys(task.request),
        status: 'failed',
        stage: 'cancelled',
        progress: 0,
        error: cancelledFailure,
        cancelled: true,
        nextRunAt: undefined,
        callback: undefined,
        updatedAt: now,
      };
      const job = (await Job.fromId(this.queue, id)) as TaskJob | undefined;
      // Written before the job goes (never missing meanwhile), only if absent: one concurrent cancel wins.
      const [[, written] = []] =
        (await this.redis
          .multi()
          .hsetnx(this.metaKey(id), 'record', recordToStored(record))
          // With the record only: a losing cancel must not write an empty hash (a resubmit would conflict).
          .hsetnx(this.metaKey(id), 'requestHash', job?.data.requestHash ?? '')
          .expire(this.metaKey(id), this.settings.retentionSeconds)
          .exec()) ?? [];
      if (written === 1) {
        try {
          // BullMQ refuses (0) to remove a job a worker just locked: then it is cancelled as a running one.
          if ((await this.queue.remove(id)) === 1) {
            await this.redis.zadd(this.key('cancelled'), Date.now(), id);
            const ended = await this.get(id);
            return ended && { task: ended, endedNow: true };
          }
        } catch (err) {
          this.logger.debug({ taskId: id, err }, 'queued task was taken by a worker while being cancelled');
        }
        await this.redis.hdel(this.metaKey(id), 'record', 'requestHash');
      }
      // Another cancel is ending it, or a worker took it: asked to stop as a running task is, in case.
    }
    await this.redis
      .multi()
      .hset(this.metaKey(id), 'cancel', '1')
      .expire(this.metaKey(id), this.settings.retentionSeconds)
      .exec();
    const current = await this.get(id);
    return current && { task: current, endedNow: false };
  }

  /** The job of an ended task keeps its request without the encryption keys (see requestWithoutKeys). */
  async eraseKeys(id: string): Promise<void> {
    const job = (await Job.fromId(this.queue, id)) as TaskJob | undefined;
    if (!job?.data.request.encryption) return;
    const request = requestWithoutKeys(fromWire(job.data.request));
    await job.updateData({ ...job.data, request: toWire<WireTaskRequest>(request) });
  }

  async setCallbackState(id: string, state: CallbackState): Promise<void> {
    // Ordered as the tasks were submitted (their place in the index), as SQLite lists them.
    const seq = state.status === 'pending' ? await this.redis.zscore(this.key('index'), id) : null;
    const tx = this.redis
      .multi()
      .hset(this.metaKey(id), 'callback', toStored<WireCallbackState>(state))
      .expire(this.metaKey(id), this.settings.retentionSeconds);
    // The callbacks not yet settled: what a starting worker resumes.
    if (state.status === 'pending') tx.zadd(this.key('callbacks'), 'NX', seq ?? String(Date.now()), id);
    else tx.zrem(this.key('callbacks'), id);
    await tx.exec();
  }

  async claimCallback(id: string, expected: CallbackState, next: CallbackState): Promise<boolean> {
    // Compare and set in one step on the server; a state no longer pending leaves the list of pending ones.
    const swapped = await this.redis.eval(
      `if redis.call('HGET', KEYS[1], 'callback') ~= ARGV[1] then return 0 end
       redis.call('HSET', KEYS[1], 'callback', ARGV[2])
       if ARGV[3] == '0' then redis.call('ZREM', KEYS[2], ARGV[4]) end
       return 1`,
      2,
      this.metaKey(id),
      this.key('callbacks'),
      toStored<WireCallbackState>(expected),
      toStored<WireCallbackState>(next),
      next.status === 'pending' ? '1' : '0',
      id,
    );
    return swapped === 1;
  }

  async pendingCallbacks(limit: number): Promise<TaskRecord[]> {
    const ids = await this.redis.zrange(this.key('callbacks'), '0', String(limit - 1));
    const out: TaskRecord[] = [];
    for (const id of ids) {
      const task = await this.get(id);
      // Gone with its record, or settled: off the list.
      if (!task || (task.callback && task.callback.status !== 'pending')) {
        await this.redis.zrem(this.key('callbacks'), id);
      } else if (task.callback && (task.status === 'completed' || task.status === 'failed')) {
        out.push(task);
      }
    }
    return out;
  }

  /**
   * Which of these tasks have a cancellation request, or were cancelled while queued (a job of theirs that a
   * worker holds is a stray: see `submit` and `cancel`).
   */
  async cancelRequested(ids: string[], withStop = false): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.metaKey(id), 'cancel', 'record', 'stop');
    const results = (await pipeline.exec()) ?? [];
    return new Set(
      ids.filter((_, i) => {
        const [cancel, record, stop] = (results[i]?.[1] ?? []) as (string | null)[];
        return cancel === '1' || !!record || (withStop && stop === '1');
      }),
    );
  }

  /** A task's job, for the steps of a split task. */
  async taskJob(id: string): Promise<TaskJob | undefined> {
    return (await Job.fromId(this.queue, id)) as TaskJob | undefined;
  }

  startWorker(handler: TaskHandler, options: WorkerOptions): TaskWorker {
    if (this.closing) throw new Error('queue is closed');
    const worker = new BullMqWorker(this, handler, options);
    this.workers.add(worker);
    return {
      close: async (graceMs?: number) => {
        await worker.close(graceMs);
        this.workers.delete(worker);
      },
    };
  }

  async check(): Promise<void> {
    await this.redis.ping();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.workers].map((w) => w.close(0)));
      const results = await Promise.allSettled([this.queue.close(), this.stepsQueue.close()]);
      this.redis.disconnect();
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    })();
    return this.closing;
  }
}

/**
 * A warning per message and error at most every 30 s (with the count left out): while Redis is away every
 * reconnection attempt fails twice a second, and the log would be nothing else.
 */
function repeatLimited(logger: Logger): (msg: string, err: Error) => void {
  const last = new Map<string, { at: number; skipped: number }>();
  return (msg, err) => {
    const key = `${msg}\n${err.message}`;
    const seen = last.get(key);
    const now = Date.now();
    if (seen && now - seen.at < REPEAT_LOG_INTERVAL_MS) {
      seen.skipped++;
      return;
    }
    logger.warn({ err: err.message, ...(seen?.skipped ? { repeated: seen.skipped } : {}) }, msg);
    last.set(key, { at: now, skipped: 0 });
  };
}

const REPEAT_LOG_INTERVAL_MS = 30_000;

/** How long a closing worker waits for its cancelled jobs to be handed back before it lets go. */
const HANDBACK_TIMEOUT_MS = 10_000;

/** One BullMQ worker with its own connections; runs the handler on the jobs BullMQ hands it. */
class BullMqWorker {
  private readonly connection: Redis;
  private readonly worker: Worker<JobData, WireTaskOutput>;
  /** Takes the steps (chunks) of split tasks, when the owner gave a step handler. */
  private readonly stepWorker?: Worker<StepJobData, unknown>;
  private readonly stepConnection?: Redis;
  /** WORKER_CONCURRENCY shared by tasks and steps. */
  private readonly slots: Slots;
  private readonly running = new Set<string>();
  /** Steps running here: step job id → task id. */
  private readonly runningSteps = new Map<string, string>();
  private readonly settling = new Set<Promise<void>>();
  private readonly cancelTimer: NodeJS.Timeout;
  private readonly log: Logger;
  /** Set when the grace period is over: a job fetched from now on goes straight back to the queue. */
  private handingBack = false;
  private closing?: Promise<void>;

  constructor(
    private readonly owner: BullMqTaskQueue,
    private readonly handler: TaskHandler,
    private readonly options: WorkerOptions,
  ) {
    this.log = owner.logger;
    const { settings } = owner;
    const warn = repeatLimited(this.log);
    // Tasks and their steps are taken on the same terms: one lease, one stall limit, one concurrency.
    const consume = <D, R>(name: string, processor: Processor<D, R>) => {
      // BullMQ's blocking commands need maxRetriesPerRequest: null on the worker's connection.
      const connection = new Redis(settings.url, { maxRetriesPerRequest: null });
      connection.on('error', (err) => warn('redis connection error', err));
      const worker = new Worker<D, R>(name, processor, {
        connection,
        prefix: settings.prefix,
        concurrency: options.concurrency,
        // A worker that dies stops renewing its locks; after this its jobs are found stalled and run again.
        lockDuration: settings.leaseMs,
        stalledInterval: settings.leaseMs,
        // A job that keeps killing its worker (crash, OOM) fails after as many runs as a failing one gets.
        maxStalledCount: settings.maxAttempts - 1,
      });
      worker.on('error', (err) => warn('worker error', err));
      return { connection, worker };
    };
    ({ connection: this.connection, worker: this.worker } = consume<JobData, WireTaskOutput>(
      queueName,
      (job, token, signal) => this.process(job, token, signal),
    ));
    this.slots = new Slots(options.concurrency);
    if (options.stepHandler) {
      ({ connection: this.stepConnection, worker: this.stepWorker } = consume<StepJobData, unknown>(
        stepsQueueName,
        (job, token, signal) => this.processStep(job, token, signal),
      ));
      this.stepWorker.on('stalled', (jobId) =>
        this.log.warn({ step: jobId }, 'step stalled (its worker stopped); queued again'),
      );
      this.stepWorker.on('lockRenewalFailed', (jobIds) => {
        for (const id of jobIds) this.stepWorker?.cancelJob(id, 'lease_lost');
      });
    }
    this.worker.on('completed', (job) => this.settled(job.id!));
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      // Failed by BullMQ itself, its runs lost with their workers (stalled too often): nothing of ours ran.
      if (
        job.finishedOn &&
        decodeFailure(job.failedReason).code === 'worker_lost' &&
        !isOurs(job.failedReason)
      )
        this.abandoned(job, countedRuns(job));
      if (job.finishedOn) this.settled(job.id!);
      else this.log.warn({ taskId: job.id, reason: err.message }, 'task will be retried');
    });
    this.worker.on('stalled', (jobId) =>
      this.log.warn({ taskId: jobId }, 'task stalled (its worker stopped); queued again'),
    );
    this.worker.on('lockRenewalFailed', (jobIds) => {
      for (const id of jobIds) this.worker.cancelJob(id, 'lease_lost');
    });
    this.cancelTimer = setInterval(() => this.pollCancellations(), owner.options.cancelPollMs ?? 1000);
  }

  private async process(
    job: TaskJob,
    token: string | undefined,
    signal?: AbortSignal,
  ): Promise<WireTaskOutput> {
    const id = job.id!;
    const log = this.log.child({ taskId: id });
    this.running.add(id);
    const progress = new ProgressWriter(job, log);
    const runs = countedRuns(job);
    const attempt = runs + 1;
    try {
      if (this.handingBack) this.worker.cancelJob(id, 'shutdown');
      if ((await this.owner.cancelRequested([id])).has(id)) {
        // A split task's chunk jobs not yet begun go; those running stop (they read the same request).
        if (job.data.split) await job.removeUnprocessedChildren().catch(() => undefined);
        this.abandoned(job, runs);
        throw new TaskFailure(cancelledFailure.code, cancelledFailure.message);
      }
      // BullMQ keeps two budgets, `attempts` for failed runs and `maxStalledCount` for runs lost with their
      // worker; a task that used up TASK_MAX_ATTEMPTS in a mix of both gets no further run.
      if (runs >= this.owner.settings.maxAttempts) {
        // The last run's own failure when one failed (a store that stayed away), said as such.
        const last = job.failedReason ? decodeFailure(job.failedReason) : undefined;
        const failure =
          last && last.code !== 'internal' && last.code !== 'worker_lost' ? last : outOfRuns(runs);
        this.abandoned(job, runs);
        throw new UnrecoverableError(JSON.stringify(failure));
      }
      // The last run of a split task: a step that failed for good fails the task with its reason.
      if (job.data.split) {
        const failed = Object.values(await job.getFailedChildrenValues());
        if (failed.length) {
          await job.removeUnprocessedChildren().catch(() => undefined);
          await this.owner.stopSteps(id);
          const failure = decodeFailure(failed[0]);
          log.warn({ code: failure.code }, 'task failed in a step');
          throw new UnrecoverableError(JSON.stringify(failure));
        }
      }
      log.info({ attempt, starts: job.attemptsStarted }, 'task started');
      if (!job.data.split) progress.write({ stage: 'starting', progress: 0, at: Date.now() });
      const task = toRecord(job, 'active', {}, this.owner.settings.maxAttempts);
      const release = await this.slots.acquire();
      try {
        for (;;) {
          signal?.throwIfAborted();
          try {
            const output = await this.handler(task, {
              signal: signal ?? new AbortController().signal,
              attempt,
              reportProgress: progress.report,
              steps: await this.stepsOf(job, token),
            });
            return toWire<WireTaskOutput>(output);
          } catch (err) {
            // Every step was done before the job could wait for them (a run after a lost one): stitch now.
            if (!(err instanceof StepsAlreadyDone)) throw err;
          }
        }
      } finally {
        release();
        await progress.flush();
      }
    } catch (err) {
      if (err instanceof UnrecoverableError) throw err;
      if (err instanceof StepsQueued) {
        log.info({ steps: err.count }, 'task split: its steps are queued');
        throw new WaitingChildrenError();
      }
      return await this.endRun({ job, token, err, signal, attempt, log, what: 'task' });
    } finally {
      this.running.delete(id);
    }
  }

  /** The TaskSteps of a run of `job`: its steps are children of the job, in the steps queue. */
  private async stepsOf(job: TaskJob, token: string | undefined): Promise<TaskSteps> {
    const id = job.id!;
    const split = job.data.split;
    let done: TaskSteps['done'];
    if (split) {
      const counts = await job.getDependenciesCount({ processed: true, unprocessed: true });
      if (!counts.unprocessed && (counts.processed ?? 0) >= split.names.length) {
        const values = await job.getChildrenValues();
        const outputs: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(values)) {
          const name = key.slice(key.lastIndexOf(':') + 1).slice(stepJobPrefix(id).length);
          outputs[name] = value;
        }
        done = { state: split.state, outputs };
      }
    }
    return {
      done,
      queue: async (steps: StepSpec[], state: unknown, progress: StepsProgress) => {
        if (!token) throw new Error('a job without a lock token cannot wait for steps');
        const names = steps.map((st) => st.name);
        // Stored first: a run lost after the children are added finds them on its next run.
        await job.updateData({ ...job.data, split: { state, progress, names, at: Date.now() } });
        const parent = { id, queue: job.queueQualifiedName };
        // The same job ids on a run again: BullMQ keeps the children it has.
        await this.owner.stepsQueue.addBulk(
          steps.map((st) => ({
            name: 'step',
            data: { taskId: id, step: st },
            opts: { jobId: `${stepJobPrefix(id)}${st.name}`, parent, continueParentOnFailure: true },
          })),
        );
        if (await job.moveToWaitingChildren(token)) throw new StepsQueued(steps.length);
        throw new StepsAlreadyDone();
      },
    };
  }

  private async processStep(job: StepJob, token: string | undefined, signal?: AbortSignal): Promise<unknown> {
    const { taskId, step } = job.data;
    const log = this.log.child({ taskId, step: step.name });
    const attempt = countedRuns(job) + 1;
    this.runningSteps.set(job.id!, taskId);
    const release = await this.slots.acquire();
    try {
      if (this.handingBack) this.stepWorker?.cancelJob(job.id!, 'shutdown');
      if ((await this.owner.cancelRequested([taskId], true)).has(taskId)) {
        throw new UnrecoverableError(JSON.stringify(cancelledFailure));
      }
      if (attempt > this.owner.settings.maxAttempts) {
        throw new UnrecoverableError(
          JSON.stringify({
            code: 'worker_lost',
            message: `its ${step.name} ran ${attempt - 1} times without finishing; giving up`,
          }),
        );
      }
      const taskJob = await this.owner.taskJob(taskId);
      if (!taskJob) throw new UnrecoverableError(JSON.stringify(cancelledFailure));
      const task = toRecord(taskJob, 'active', {}, this.owner.settings.maxAttempts);
      let last = 0;
      const output = await this.options.stepHandler!(task, step, {
        signal: signal ?? new AbortController().signal,
        attempt,
        reportProgress: (f) => {
          const now = Date.now();
          if (now - last < PROGRESS_WRITE_INTERVAL_MS) return;
          last = now;
          this.owner
            .stepProgress(taskId, step.name, Math.max(0, Math.min(0.999, f)))
            .catch((err: unknown) => log.warn({ err }, 'could not record progress'));
        },
      });
      await this.owner
        .stepProgress(taskId, step.name, 1)
        .catch((err: unknown) => log.warn({ err }, 'could not record progress'));
      return output ?? null;
    } catch (err) {
      if (err instanceof UnrecoverableError) throw err;
      return await this.endRun({ job, token, err, signal, attempt, log, what: 'step' });
    } finally {
      release();
      this.runningSteps.delete(job.id!);
    }
  }

  /**
   * Ends a task's or a step's run that threw `err`: hands it back (shutdown, lost lock), or throws what makes
   * BullMQ retry it (after its backoff) or fail it for good.
   */
  private async endRun(o: {
    job: TaskJob | StepJob;
    token: string | undefined;
    err: unknown;
    signal: AbortSignal | undefined;
    attempt: number;
    log: Logger;
    what: 'task' | 'step';
  }): Promise<never> {
    const end = classifyRunEnd({
      err: o.err,
      abortReason: o.signal?.aborted ? (o.signal.reason as AbortReason) : undefined,
      attempt: o.attempt,
      maxAttempts: this.owner.settings.maxAttempts,
      retryBackoffMs: this.owner.options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS,
    });
    if (end.kind === 'hand_back') {
      // On shutdown it goes to the front of the queue; with a lost lock it is already queued again (or running
      // elsewhere) and is not ours to touch. If moveToWait fails, the lock runs out and the stalled check requeues.
      if (end.reason === 'shutdown' && o.token) {
        await o.job
          .moveToWait(o.token)
          .catch((e: unknown) => o.log.warn({ err: e }, `could not hand the ${o.what} back`));
      }
      o.log.info({ reason: end.reason }, `${o.what} handed back`);
      throw new WaitingError();
    }
    const { failure } = end;
    if (failure.code === 'internal') o.log.error({ err: o.err }, `${o.what} failed with an unexpected error`);
    else if (end.kind === 'retry') o.log.warn({ code: failure.code }, `${o.what} will be retried`);
    const message = JSON.stringify({ code: failure.code, message: failure.message });
    // UnrecoverableError tells BullMQ not to retry, whatever attempts remain; BullMQ's backoff times a retry.
    throw end.kind === 'fail' ? new UnrecoverableError(message) : new Error(message);
  }

  /** A task ended here without its handler running, after `earlierRuns` runs: see `WorkerOptions.onAbandoned`. */
  private abandoned(job: TaskJob, earlierRuns: number): void {
    if (earlierRuns < 1 || !this.options.onAbandoned) return;
    try {
      this.options.onAbandoned(toRecord(job, 'failed', {}, this.owner.settings.maxAttempts), earlierRuns);
    } catch (err) {
      this.log.error({ taskId: job.id, err }, 'onAbandoned hook failed');
    }
  }

  private pollCancellations(): void {
    this.pollStepCancellations();
    if (this.running.size === 0) return;
    this.owner.cancelRequested([...this.running]).then(
      (ids) => {
        for (const id of ids) {
          if (this.worker.cancelJob(id, 'cancelled'))
            this.log.info({ taskId: id }, 'stopping task: cancelled');
        }
      },
      (err: unknown) => this.log.warn({ err }, 'could not read cancellation requests'),
    );
  }

  /** Steps whose task was cancelled, or failed in another step, stop. */
  private pollStepCancellations(): void {
    if (this.runningSteps.size === 0 || !this.stepWorker) return;
    const steps = [...this.runningSteps];
    this.owner.cancelRequested([...new Set(steps.map(([, t]) => t))], true).then(
      (ids) => {
        for (const [jobId, taskId] of steps) {
          if (ids.has(taskId) && this.stepWorker?.cancelJob(jobId, 'cancelled'))
            this.log.info({ taskId, step: jobId }, 'stopping step: its task was cancelled or failed');
        }
      },
      (err: unknown) => this.log.warn({ err }, 'could not read cancellation requests'),
    );
  }

  /** Tells the owner of the worker about a final outcome, once BullMQ has stored it. */
  private settled(id: string): void {
    const { onSettled } = this.options;
    const done = this.owner
      .eraseKeys(id)
      .catch((err: unknown) => this.log.error({ taskId: id, err }, "could not erase an ended task's keys"))
      .then(() => (onSettled ? this.owner.get(id) : undefined))
      .then((task) => {
        if (task) onSettled?.(task);
      })
      .catch((err: unknown) => this.log.error({ taskId: id, err }, 'onSettled hook failed'))
      .finally(() => this.settling.delete(done));
    this.settling.add(done);
  }

  close(graceMs = 0): Promise<void> {
    this.closing ??= (async () => {
      // BullMQ's close stops fetching jobs and waits for the running ones.
      const closed = Promise.all([
        this.worker.close().catch((err: unknown) => this.log.error({ err }, 'worker close')),
        this.stepWorker?.close().catch((err: unknown) => this.log.error({ err }, 'worker close')),
      ]);
      await waitAtMost(closed, graceMs);
      this.handingBack = true;
      this.worker.cancelAllJobs('shutdown');
      this.stepWorker?.cancelAllJobs('shutdown');
      // Handing the cancelled jobs back goes through Redis: when it is away, BullMQ waits for it forever. The
      // jobs it could not hand back are found stalled by another worker once their lock lapses.
      await waitAtMost(closed, HANDBACK_TIMEOUT_MS);
      clearInterval(this.cancelTimer);
      await waitAtMost(Promise.allSettled([...this.settling]), HANDBACK_TIMEOUT_MS);
      this.connection.disconnect();
      this.stepConnection?.disconnect();
    })();
    return this.closing;
  }
}

/** Thrown by TaskSteps.queue when every step had completed already: the handler runs again at once. */
class StepsAlreadyDone extends Error {}

/** The step jobs of task `id` are named `<id>.s-<step name>` (BullMQ job ids hold no `:`). */
function stepJobPrefix(id: string): string {
  return `${id}.s-`;
}

/** A counting semaphore: a worker's concurrency, shared by its tasks and its steps. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/** Writes progress in order, throttled by the worker policy; the handler never waits for it. */
class ProgressWriter {
  private chain = Promise.resolve();
  readonly report = throttledProgress(({ earlyOutput, ...update }) =>
    this.write({ ...update, earlyOutput: earlyOutput && toWire<WireEarlyOutput>(earlyOutput) }),
  );

  constructor(
    private readonly job: TaskJob,
    private readonly log: Logger,
  ) {}

  write(data: ProgressData): void {
    this.chain = this.chain
      .then(() => this.job.updateProgress(data as unknown as object))
      .catch((err: unknown) => this.log.warn({ err }, 'could not record progress'));
  }

  flush(): Promise<void> {
    return this.chain;
  }
}

/** Idempotency keys map to a fixed task id, so BullMQ's own jobId uniqueness makes the submission atomic. */
function idFromKey(key: string): string {
  const h = createHash('sha256').update(`idempotency-key\0${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Runs counted against the attempts as SQLite counts them: ended or lost (stalled), not handed back. */
function countedRuns(job: Pick<Job, 'attemptsMade' | 'stalledCounter'>): number {
  return job.attemptsMade + (job.stalledCounter ?? 0);
}

function statusOf(state: JobState | 'unknown'): TaskStatus {
  switch (state) {
    case 'active':
    case 'waiting-children':
      return 'processing';
    case 'completed':
      return 'completed';
    case 'failed':
      return 'failed';
    default:
      return 'queued';
  }
}

/** Whether a job's failedReason is one this adapter stored (a JSON failure), not BullMQ's own words. */
function isOurs(reason: string | undefined): boolean {
  return !!reason?.startsWith('{');
}

/** Reads the failure this adapter stored as the job's failedReason; BullMQ's own reasons mean a lost worker. */
function decodeFailure(reason: string | undefined): { code: FailureCode; message: string } {
  try {
    const parsed = JSON.parse(reason ?? '') as { code?: string; message?: string };
    if (parsed.code && parsed.code in failureCodes && typeof parsed.message === 'string') {
      return { code: parsed.code as FailureCode, message: parsed.message };
    }
  } catch {
    // Not one of ours.
  }
  if (reason?.includes('stalled') || reason?.includes('started more than')) {
    return {
      code: 'worker_lost',
      message: 'the workers running this task stopped too many times; giving up',
    };
  }
  return { code: 'internal', message: 'internal error while processing the task' };
}

/** When a task queued again runs next; `lapsed`: the job is active, but its lock ran out (no live run). */
interface NextRun {
  lapsed?: boolean;
  /** ms */
  at?: number;
}

/**
 * A task's record from its job; `maxAttempts` bounds the runs shown (a run refused for it counts in BullMQ).
 * An active job whose lock lapsed is shown queued again (`requeued`): its run was lost.
 */
function toRecord(
  job: TaskJob,
  state: JobState | 'unknown',
  meta: TaskMeta,
  maxAttempts: number,
  next: NextRun = {},
): TaskRecord {
  if (next.lapsed) {
    return {
      ...toRecord(job, 'active', meta, maxAttempts),
      status: 'queued',
      stage: 'requeued',
      progress: 0,
      etaSeconds: undefined,
      earlyOutput: undefined,
      nextRunAt: next.at === undefined ? undefined : new Date(next.at).toISOString(),
    };
  }
  const status = statusOf(state);
  const progress = isProgress(job.progress) ? job.progress : undefined;
  const error =
    job.failedReason && (status === 'failed' || status === 'queued')
      ? decodeFailure(job.failedReason)
      : undefined;
  let stage: string | undefined;
  if (status === 'completed') stage = 'done';
  else if (status === 'failed') stage = error?.code === 'cancelled' ? 'cancelled' : 'failed';
  else if (status === 'processing') stage = progress?.stage ?? 'starting';
  else if (job.attemptsMade > 0) stage = 'retrying';
  else if (job.attemptsStarted > 0) stage = 'requeued';
  const updated = Math.max(job.timestamp, job.processedOn ?? 0, job.finishedOn ?? 0, progress?.at ?? 0);
  return withCallback(
    {
      id: job.id!,
      request: fromWire(job.data.request),
      status,
      stage,
      progress: status === 'completed' ? 100 : status === 'queued' ? 0 : (progress?.progress ?? 0),
      etaSeconds: status === 'processing' ? progress?.etaSeconds : undefined,
      earlyOutput:
        status === 'processing' && progress?.earlyOutput ? fromWire(progress.earlyOutput) : undefined,
      error,
      nextRunAt: status === 'queued' && next.at !== undefined ? new Date(next.at).toISOString() : undefined,
      output: status === 'completed' && job.returnvalue ? fromWire(job.returnvalue) : undefined,
      cancelled: error?.code === 'cancelled' && status === 'failed' ? true : undefined,
      attempts: Math.min(countedRuns(job) + (status === 'processing' ? 1 : 0), maxAttempts),
      createdAt: new Date(job.timestamp).toISOString(),
      updatedAt: new Date(updated).toISOString(),
    },
    meta,
  );
}

function withCallback(record: TaskRecord, meta: TaskMeta): TaskRecord {
  return { ...record, callback: meta.callback ? fromStored<WireCallbackState>(meta.callback) : undefined };
}

function isProgress(value: unknown): value is ProgressData {
  return typeof value === 'object' && value !== null && typeof (value as ProgressData).stage === 'string';
}
