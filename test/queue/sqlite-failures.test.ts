import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { SqliteTaskQueue } from '../../src/queue/sqlite-queue.js';
import { minimalOutput } from '../helpers/task-output.js';

const output = minimalOutput;

describe('SQLite queue: a database that refuses writes for a while', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-sqlite-busy-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('progress, lease and claim writes that fail are logged; the process lives and the task completes', async () => {
    const dbPath = path.join(root, 'tasks.db');
    const errors: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
    const queue = new SqliteTaskQueue({
      path: dbPath,
      leaseMs: 10_000,
      maxAttempts: 2,
      logger: log,
      pollMs: 50,
      busyTimeoutMs: 50,
    });
    // Another process's connection that takes the write lock and keeps it (a backup, a stuck admin shell).
    const other = new Database(dbPath);
    let released!: () => void;
    const lockReleased = new Promise<void>((r) => (released = r));
    const worker = queue.startWorker(
      async (task, ctx) => {
        other.exec('BEGIN EXCLUSIVE');
        // Every write of the worker fails while the lock is held: progress from the encoder's output,
        // lease renewals, the poll for new tasks.
        for (let i = 0; i < 20; i++) {
          ctx.reportProgress(`step${i}`, i * 5);
          await new Promise((r) => setTimeout(r, 60));
        }
        ctx.reportProgress('publish', 99);
        // Still locked when the result is recorded: that write is tried again until the lock is gone.
        setTimeout(() => {
          other.exec('COMMIT');
          released();
        }, 1500);
        return output(task.id);
      },
      { concurrency: 1 },
    );
    try {
      const { task } = await queue.submit({ videoFilename: 'busy.mp4' });
      await lockReleased;
      const deadline = Date.now() + 10_000;
      let final = await queue.get(task.id);
      while (final?.status !== 'completed' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        final = await queue.get(task.id);
      }
      assert.equal(final?.status, 'completed');
      assert.ok(
        errors.some((e) => /failed to record progress/.test(e)),
        `the failed writes were logged: ${errors.join('; ')}`,
      );
      assert.ok(
        errors.some((e) => /failed to record a completed task/.test(e)),
        'the completion was refused at first',
      );
      assert.equal(final?.attempts, 1, 'the run was not lost: no second attempt');
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await worker.close();
      await queue.close();
    }
  });
});

describe('SQLite queue: a task whose run died', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-sqlite-dead-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('cancelled or out of runs, it ends without running, and what its runs published is to be taken back', async () => {
    const dbPath = path.join(root, 'tasks.db');
    const queue = new SqliteTaskQueue({
      path: dbPath,
      leaseMs: 10_000,
      maxAttempts: 2,
      logger: pino({ level: 'silent' }),
    });
    try {
      const cancelled = (await queue.submit({ videoFilename: 'cancelled.mp4' })).task;
      const spent = (await queue.submit({ videoFilename: 'spent.mp4' })).task;
      // As the database holds them after their worker died mid-run: processing, their lease run out; one was
      // cancelled meanwhile, the other has used up its runs.
      const db = new Database(dbPath);
      const died = db.prepare(
        `UPDATE tasks SET status = 'processing', attempts = ?, cancel_requested = ?, lease_owner = 'gone',
           lease_expires = 0 WHERE id = ?`,
      );
      died.run(1, 1, cancelled.id);
      died.run(2, 0, spent.id);
      db.close();
      const ran: string[] = [];
      const abandoned: [string, number][] = [];
      const worker = queue.startWorker(
        async (t) => {
          ran.push(t.id);
          return output(t.id);
        },
        { concurrency: 1, onAbandoned: (t, runs) => abandoned.push([t.id, runs]) },
      );
      for (let i = 0; i < 100 && abandoned.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      await worker.close(0);
      assert.deepEqual(ran, []);
      assert.deepEqual(
        abandoned.sort(),
        [
          [cancelled.id, 1],
          [spent.id, 2],
        ].sort(),
      );
      assert.equal((await queue.get(cancelled.id))?.error?.code, 'cancelled');
      assert.equal((await queue.get(spent.id))?.error?.code, 'worker_lost');
    } finally {
      await queue.close();
    }
  });
});
