import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/process/logger.js';
import { BullMqTaskQueue } from '../../src/queue/bullmq-queue.js';
import type { TaskOutput, TaskRecord } from '../../src/domain/task.js';
import { TaskFailure } from '../../src/domain/failures.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

/**
 * A worker process that dies mid-task, played by a bare BullMQ worker closed with `force`: it stops renewing
 * the lock of the task it holds and never finishes it, as a SIGKILLed process would.
 */
describe('BullMqTaskQueue: dead workers, retention', () => {
  let redis: RedisServer;
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    await redis?.stop();
  });

  const open = (maxAttempts: number, retentionSeconds = 3600) => {
    const settings = {
      kind: 'redis' as const,
      url: redis.url,
      prefix: `bq-${randomUUID().slice(0, 8)}`,
      maxAttempts,
      retentionSeconds,
      leaseMs: 1000,
    };
    return new BullMqTaskQueue(settings, logger, { retryBackoffMs: 100 });
  };

  const dieWhileRunning = async (queue: BullMqTaskQueue, id: string) => {
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    let taken!: () => void;
    const running = new Promise<void>((r) => (taken = r));
    const doomed = new Worker(
      'tasks',
      () => {
        taken();
        return new Promise(() => undefined);
      },
      { connection, prefix: queue.settings.prefix, lockDuration: 1000, stalledInterval: 1000 },
    );
    await running;
    assert.equal((await queue.get(id))?.status, 'processing');
    await doomed.close(true);
    connection.disconnect();
  };

  test('the task of a dead worker runs again on another and completes', async () => {
    const queue = open(3);
    try {
      const { task } = await queue.submit({ videoFilename: 'a.mp4' });
      await dieWhileRunning(queue, task.id);
      const attempts: number[] = [];
      const settled: TaskRecord[] = [];
      const worker = queue.startWorker(
        async (t, ctx) => {
          attempts.push(ctx.attempt);
          return {
            storage: 'local',
            prefix: t.id,
            poster: { key: 'p' },
            renditions: [],
            audio: false,
            duration: 1,
            files: 1,
            bytes: 1,
          };
        },
        { concurrency: 1, onSettled: (t) => settled.push(t) },
      );
      const final = await waitFinal(queue, task.id);
      assert.equal(final.status, 'completed');
      assert.deepEqual(attempts, [2], 'the lost run counts as an attempt');
      assert.equal(final.attempts, 2);
      await worker.close(0);
      assert.deepEqual(
        settled.map((t) => t.status),
        ['completed'],
      );
    } finally {
      await queue.close();
    }
  });

  test('a task whose worker died in its last attempt fails as worker_lost, settled once', async () => {
    const queue = open(1);
    try {
      const { task } = await queue.submit({ videoFilename: 'b.mp4' });
      await dieWhileRunning(queue, task.id);
      let ran = false;
      const settled: TaskRecord[] = [];
      const worker = queue.startWorker(
        async () => {
          ran = true;
          throw new Error('must not run');
        },
        { concurrency: 1, onSettled: (t) => settled.push(t) },
      );
      const final = await waitFinal(queue, task.id);
      assert.equal(final.status, 'failed');
      assert.equal(final.error?.code, 'worker_lost');
      assert.equal(ran, false);
      await new Promise((r) => setTimeout(r, 300));
      await worker.close(0);
      assert.equal(settled.length, 1);
      assert.equal(settled[0]?.error?.code, 'worker_lost');
      assert.deepEqual(await queue.counts(), { queued: 0, processing: 0, completed: 0, failed: 1 });
    } finally {
      await queue.close();
    }
  });

  test('a task cancelled after its worker died ends without running; what its run published is to be taken back', async () => {
    const queue = open(3);
    try {
      const { task } = await queue.submit({ videoFilename: 'gone.mp4' });
      await dieWhileRunning(queue, task.id);
      const asked = await queue.cancel(task.id);
      assert.equal(asked?.endedNow, false, 'its worker is the one to end it');
      const ran: string[] = [];
      const abandoned: [string, number][] = [];
      const worker = queue.startWorker(
        async (t) => {
          ran.push(t.id);
          throw new Error('must not run');
        },
        { concurrency: 1, onAbandoned: (t, runs) => abandoned.push([t.id, runs]) },
      );
      const final = await waitFinal(queue, task.id);
      await worker.close(0);
      assert.equal(final.error?.code, 'cancelled');
      assert.deepEqual(ran, []);
      assert.deepEqual(abandoned, [[task.id, 1]]);
    } finally {
      await queue.close();
    }
  });

  test("a dead run's task queued again and cancelled there: the cancel ends it, saying it ran once", async () => {
    const queue = open(3);
    try {
      const { task } = await queue.submit({ videoFilename: 'requeued.mp4' });
      await dieWhileRunning(queue, task.id);
      // A worker that takes nothing but looks for stalled tasks: the dead run's task goes back to the queue.
      const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
      const checker = new Worker('tasks', null, {
        connection,
        prefix: queue.settings.prefix,
        autorun: false,
        stalledInterval: 200,
      });
      try {
        void checker.startStalledCheckTimer();
        for (let i = 0; i < 100 && (await queue.get(task.id))?.status !== 'queued'; i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await checker.close(true);
        connection.disconnect();
      }
      const cancelled = await queue.cancel(task.id);
      assert.equal(cancelled?.endedNow, true);
      // What the API passes on as the runs whose output is to be taken back.
      assert.equal(cancelled?.task.attempts, 1);
    } finally {
      await queue.close();
    }
  });

  test('failed runs and runs lost with their worker share one budget of TASK_MAX_ATTEMPTS', async () => {
    const settings = {
      kind: 'redis' as const,
      url: redis.url,
      prefix: `bq-${randomUUID().slice(0, 8)}`,
      maxAttempts: 3,
      retentionSeconds: 3600,
      leaseMs: 1000,
    };
    // A backoff long enough to stop the first worker before the retry.
    const queue = new BullMqTaskQueue(settings, logger, { retryBackoffMs: 1500 });
    try {
      const { task } = await queue.submit({ videoFilename: 'mixed.mp4' });
      const attempts: number[] = [];
      const failing = queue.startWorker(
        async (_t, ctx) => {
          attempts.push(ctx.attempt);
          throw new TaskFailure('storage_error', 'storage unreachable');
        },
        { concurrency: 1 },
      );
      for (let i = 0; i < 100 && attempts.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await failing.close(0);
      assert.deepEqual(attempts, [1]);
      // Run 2 and run 3 die with their worker.
      await dieWhileRunning(queue, task.id);
      await dieWhileRunning(queue, task.id);
      const settled: TaskRecord[] = [];
      const worker = queue.startWorker(
        async (_t, ctx) => {
          attempts.push(ctx.attempt);
          throw new Error('must not run a fourth time');
        },
        { concurrency: 1, onSettled: (t) => settled.push(t) },
      );
      const final = await waitFinal(queue, task.id);
      await new Promise((r) => setTimeout(r, 300));
      await worker.close(0);
      assert.deepEqual(attempts, [1], 'three runs, none more');
      assert.equal(final.status, 'failed');
      assert.deepEqual(final.error, { code: 'storage_error', message: 'storage unreachable' }, 'the failure');
      assert.equal(final.attempts, 3);
      assert.equal(settled.length, 1);
    } finally {
      await queue.close();
    }
  });

  test('finished tasks are removed after the retention, from get, list and the index', async () => {
    const queue = open(1, 1);
    try {
      const handler = async (t: TaskRecord) => {
        if (t.request.videoFilename === 'bad.mp4') throw new TaskFailure('not_a_video', 'no');
        return output(t.id);
      };
      const worker = queue.startWorker(handler, { concurrency: 1 });
      const done = (await queue.submit({ videoFilename: 'old.mp4' })).task.id;
      const failed = (await queue.submit({ videoFilename: 'bad.mp4' })).task.id;
      const cancelled = (await queue.submit({ videoFilename: 'c.mp4' })).task.id;
      await waitFinal(queue, done);
      await waitFinal(queue, failed);
      await worker.close(0);
      await queue.cancel(cancelled);
      assert.equal((await queue.list({ limit: 10 })).tasks.length, 3);
      await new Promise((r) => setTimeout(r, 2100));
      // BullMQ removes old finished jobs when later ones finish.
      const next = queue.startWorker(handler, { concurrency: 1 });
      const fresh = (await queue.submit({ videoFilename: 'new.mp4' })).task.id;
      await waitFinal(queue, fresh);
      const fresh2 = (await queue.submit({ videoFilename: 'bad.mp4' })).task.id;
      await waitFinal(queue, fresh2);
      await next.close(0);
      assert.equal(await queue.get(done), undefined);
      assert.equal(await queue.get(failed), undefined);
      assert.deepEqual(
        (await queue.list({ limit: 10 })).tasks.map((t) => t.id).sort(),
        [fresh, fresh2].sort(),
      );
      assert.equal(await queue.get(cancelled), undefined, 'a task cancelled while queued goes too');
      assert.deepEqual(await queue.counts(), { queued: 0, processing: 0, completed: 1, failed: 1 });
      const probe = new Redis(redis.url);
      try {
        const indexed = await probe.zrange(`${queue.settings.prefix}:tasks:task-index`, '0', '-1');
        assert.deepEqual(indexed.sort(), [fresh, fresh2].sort(), 'the index forgets removed tasks');
      } finally {
        probe.disconnect();
      }
    } finally {
      await queue.close();
    }
  });
});

function output(prefix: string): TaskOutput {
  return {
    storage: 'local',
    prefix,
    poster: { key: 'p' },
    renditions: [],
    audio: false,
    duration: 1,
    files: 1,
    bytes: 1,
  };
}

async function waitFinal(queue: BullMqTaskQueue, id: string): Promise<TaskRecord> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const t = await queue.get(id);
    if (t && (t.status === 'completed' || t.status === 'failed')) return t;
    if (Date.now() > deadline) assert.fail(`task still ${t?.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
