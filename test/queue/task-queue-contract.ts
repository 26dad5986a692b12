import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { toStatusDocument } from '../../src/api/status-document.js';
import { TaskFailure } from '../../src/domain/failures.js';
import type { TaskRecord } from '../../src/domain/task.js';
import {
  QueueFullError,
  type TaskHandler,
  type TaskQueue,
  type TaskWorker,
} from '../../src/queue/task-queue.js';
import { minimalOutput } from '../helpers/task-output.js';

/**
 * How a suite gets queues. Every call gives a fresh, empty queue of its own; `maxAttempts` is the number of
 * runs a task gets; retries wait a short backoff, and a running task notices a cancellation within a second.
 */
export interface QueueFactory {
  name: string;
  open(options: { maxAttempts: number }): Promise<TaskQueue>;
}

const output = minimalOutput;

/** A handler that finishes at once. */
const quick: TaskHandler = async (task) => output(task.request.videoFilename);

/** A handler that runs until it is aborted, then rejects with the abort reason. */
const untilAborted =
  (started: Set<string>, aborted: Map<string, unknown>): TaskHandler =>
  (task, ctx) =>
    new Promise((_, reject) => {
      started.add(task.id);
      ctx.signal.addEventListener('abort', () => {
        aborted.set(task.id, ctx.signal.reason);
        reject(new Error('aborted'));
      });
    });

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const finalRecord = (queue: TaskQueue, id: string, timeoutMs?: number) =>
  until(
    `task ${id} to finish`,
    async () => {
      const t = await queue.get(id);
      return t && (t.status === 'completed' || t.status === 'failed') ? t : undefined;
    },
    timeoutMs,
  );

/** The TaskQueue contract: every implementation runs this same suite. */
export function taskQueueContract(factory: QueueFactory): void {
  describe(`TaskQueue contract: ${factory.name}`, () => {
    const open: TaskQueue[] = [];
    const workers: TaskWorker[] = [];
    const openQueue = async (maxAttempts = 3) => {
      const q = await factory.open({ maxAttempts });
      open.push(q);
      return q;
    };
    const start = (q: TaskQueue, handler: TaskHandler, options: Parameters<TaskQueue['startWorker']>[1]) => {
      const w = q.startWorker(handler, options);
      workers.push(w);
      return w;
    };
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.close(0)));
      await Promise.all(open.splice(0).map((q) => q.close()));
    });
    after(async () => {
      await Promise.all(open.map((q) => q.close()));
    });

    test('submit records a queued task that get returns; unknown ids are undefined', async () => {
      const q = await openQueue();
      const { outcome, task } = await q.submit({ videoFilename: 'a.mp4', callbackUrl: 'http://x/cb' });
      assert.equal(outcome, 'created');
      assert.equal(task.status, 'queued');
      assert.equal(task.progress, 0);
      assert.equal(task.attempts, 0);
      assert.deepEqual(task.request, { videoFilename: 'a.mp4', callbackUrl: 'http://x/cb' });
      assert.ok(!Number.isNaN(Date.parse(task.createdAt)));
      const got = await q.get(task.id);
      assert.equal(got?.id, task.id);
      assert.equal(got?.status, 'queued');
      assert.deepEqual(got?.request, task.request);
      assert.equal(await q.get('00000000-0000-4000-8000-000000000000'), undefined);
      assert.equal(await q.get('not-a-task'), undefined);
      await q.check();
    });

    test('list is newest first, pages with a cursor and filters by status; counts by status', async () => {
      const q = await openQueue();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await q.submit({ videoFilename: `v${i}.mp4` })).task.id);
      const page1 = await q.list({ limit: 2 });
      assert.deepEqual(
        page1.tasks.map((t) => t.id),
        [ids[4], ids[3]],
      );
      assert.ok(page1.nextCursor);
      const page2 = await q.list({ limit: 2, cursor: page1.nextCursor });
      assert.deepEqual(
        page2.tasks.map((t) => t.id),
        [ids[2], ids[1]],
      );
      const page3 = await q.list({ limit: 2, cursor: page2.nextCursor });
      assert.deepEqual(
        page3.tasks.map((t) => t.id),
        [ids[0]],
      );
      assert.equal(page3.nextCursor, undefined);

      await q.cancel(ids[1]!);
      const failed = await q.list({ limit: 10, status: 'failed' });
      assert.deepEqual(
        failed.tasks.map((t) => t.id),
        [ids[1]],
      );
      const queued = await q.list({ limit: 3, status: 'queued' });
      assert.deepEqual(
        queued.tasks.map((t) => t.id),
        [ids[4], ids[3], ids[2]],
      );
      const rest = await q.list({ limit: 3, status: 'queued', cursor: queued.nextCursor });
      assert.deepEqual(
        rest.tasks.map((t) => t.id),
        [ids[0]],
      );
      assert.deepEqual(await q.counts(), { queued: 4, processing: 0, completed: 0, failed: 1 });
    });

    test('position tells where a queued task stands in line', async () => {
      const q = await openQueue();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await q.submit({ videoFilename: `q${i}.mp4` })).task.id);
      assert.ok(q.position, 'the queue can tell positions');
      assert.deepEqual(await Promise.all(ids.map((id) => q.position!(id))), [1, 2, 3]);
      await q.cancel(ids[0]!);
      assert.deepEqual(await Promise.all(ids.map((id) => q.position!(id))), [undefined, 1, 2]);
      assert.equal(await q.position('00000000-0000-4000-8000-000000000000'), undefined);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      start(q, async (t) => (await gate, output(t.id)), { concurrency: 1 });
      await until('the first task to run', async () => (await q.get(ids[1]!))?.status === 'processing');
      assert.equal(await q.position(ids[1]!), undefined, 'a running task has no position');
      assert.equal(await q.position(ids[2]!), 1);
      release();
      await finalRecord(q, ids[2]!);
    });

    test('an idempotency key returns the same task for the same request and conflicts on another', async () => {
      const q = await openQueue();
      const first = await q.submit({ videoFilename: 'k.mp4' }, { idempotencyKey: 'key-1' });
      assert.equal(first.outcome, 'created');
      const again = await q.submit({ videoFilename: 'k.mp4' }, { idempotencyKey: 'key-1' });
      assert.equal(again.outcome, 'existing');
      assert.equal(again.task.id, first.task.id);
      const other = await q.submit({ videoFilename: 'other.mp4' }, { idempotencyKey: 'key-1' });
      assert.equal(other.outcome, 'conflict');
      assert.equal(other.task.id, first.task.id);
      const noKey1 = await q.submit({ videoFilename: 'k.mp4' });
      const noKey2 = await q.submit({ videoFilename: 'k.mp4' });
      assert.notEqual(noKey1.task.id, noKey2.task.id);
      const otherKey = await q.submit({ videoFilename: 'k.mp4' }, { idempotencyKey: 'key-2' });
      assert.equal(otherKey.outcome, 'created');
      assert.notEqual(otherKey.task.id, first.task.id);
      assert.equal((await q.list({ limit: 10 })).tasks.length, 4, 'repeated submissions add no task');

      // A cancelled task still answers for its key.
      await q.cancel(first.task.id);
      const afterCancel = await q.submit({ videoFilename: 'k.mp4' }, { idempotencyKey: 'key-1' });
      assert.equal(afterCancel.outcome, 'existing');
      assert.equal(afterCancel.task.status, 'failed');
    });

    test('metadata whose keys come in another order is the same request for an idempotency key', async () => {
      const q = await openQueue();
      const metadata = { user: 7, tags: { b: 1, a: [{ y: 1, x: 2 }] } };
      const first = await q.submit({ videoFilename: 'm.mp4', metadata }, { idempotencyKey: 'meta' });
      const reordered = { tags: { a: [{ x: 2, y: 1 }], b: 1 }, user: 7 };
      const again = await q.submit(
        { videoFilename: 'm.mp4', metadata: reordered },
        { idempotencyKey: 'meta' },
      );
      assert.equal(again.outcome, 'existing');
      assert.equal(again.task.id, first.task.id);
      const changed = await q.submit(
        { videoFilename: 'm.mp4', metadata: { ...reordered, user: 8 } },
        { idempotencyKey: 'meta' },
      );
      assert.equal(changed.outcome, 'conflict');
    });

    test('cancelling a queued task fails it at once, marked cancelled', async () => {
      const q = await openQueue();
      const { task } = await q.submit({ videoFilename: 'c.mp4' });
      const cancelled = await q.cancel(task.id);
      assert.equal(cancelled?.task.status, 'failed');
      assert.equal(cancelled?.task.cancelled, true);
      assert.equal(cancelled?.task.error?.code, 'cancelled');
      assert.equal(cancelled?.endedNow, true, 'this call ended it: its caller reports the end');
      assert.equal((await q.get(task.id))?.status, 'failed');
      const twice = await q.cancel(task.id);
      assert.equal(twice?.task.status, 'failed');
      assert.equal(twice?.endedNow, false, 'ended already');
      assert.equal(await q.cancel('00000000-0000-4000-8000-000000000000'), undefined);
      // A worker started afterwards never runs it.
      const ran: string[] = [];
      start(q, async (t) => (ran.push(t.id), output(t.id)), { concurrency: 1 });
      const later = await q.submit({ videoFilename: 'later.mp4' });
      await finalRecord(q, later.task.id);
      assert.deepEqual(ran, [later.task.id]);
      const again = await q.get(task.id);
      assert.equal(again?.status, 'failed');
      assert.equal(again?.cancelled, true);
      assert.equal(again?.attempts, 0);
    });

    test('of cancels of a queued task at once, exactly one is told it ended the task', async () => {
      const q = await openQueue();
      for (let i = 0; i < 10; i++) {
        const request = { videoFilename: `race-${i}.mp4` };
        const { task } = await q.submit(request, { idempotencyKey: `cancel-race-${i}` });
        const results = await Promise.all([
          q.cancel(task.id),
          q.cancel(task.id),
          new Promise((r) => setTimeout(r, i % 3)).then(() => q.cancel(task.id)),
        ]);
        assert.equal(results.filter((r) => r?.endedNow).length, 1, JSON.stringify(results));
        const final = await q.get(task.id);
        assert.equal(final?.status, 'failed');
        assert.equal(final?.cancelled, true);
        const again = await q.submit(request, { idempotencyKey: `cancel-race-${i}` });
        assert.equal(again.outcome, 'existing', 'the same request, the same (cancelled) task');
      }
      assert.equal((await q.counts()).failed, 10);
    });

    test('an idempotent resubmit racing a cancel gets the cancelled task; nothing runs', async () => {
      const q = await openQueue();
      const ran: string[] = [];
      for (let i = 0; i < 20; i++) {
        const key = `race-key-${i}`;
        const request = { videoFilename: `key-${i}.mp4` };
        const { task } = await q.submit(request, { idempotencyKey: key });
        const [cancelled, again] = await Promise.all([
          q.cancel(task.id),
          new Promise((r) => setTimeout(r, i % 4)).then(() => q.submit(request, { idempotencyKey: key })),
        ]);
        assert.equal(cancelled?.endedNow, true);
        assert.equal(again.task.id, task.id);
        assert.notEqual(again.outcome, 'created', 'the same task, not a new one');
        const final = await q.get(task.id);
        assert.equal(final?.status, 'failed', `round ${i}: ${JSON.stringify(final)}`);
      }
      // A worker started afterwards finds nothing to run.
      start(q, async (t) => (ran.push(t.id), output(t.id)), { concurrency: 1 });
      const later = await q.submit({ videoFilename: 'after.mp4' });
      await finalRecord(q, later.task.id);
      assert.deepEqual(ran, [later.task.id]);
    });

    test('cancelling a running task aborts its handler and fails it as cancelled, settled once', async () => {
      const q = await openQueue();
      const started = new Set<string>();
      const aborted = new Map<string, unknown>();
      const settled: TaskRecord[] = [];
      start(q, untilAborted(started, aborted), { concurrency: 1, onSettled: (t) => settled.push(t) });
      const { task } = await q.submit({ videoFilename: 'run.mp4' });
      await until('the handler to start', async () => started.has(task.id));
      const during = await q.cancel(task.id);
      assert.ok(during && (during.task.status === 'processing' || during.task.status === 'failed'));
      assert.equal(during.endedNow, false, 'its worker settles it');
      const t0 = Date.now();
      await until('the signal to be aborted', async () => aborted.has(task.id), 5000);
      assert.ok(Date.now() - t0 < 5000);
      const final = await finalRecord(q, task.id);
      assert.equal(final.status, 'failed');
      assert.equal(final.cancelled, true);
      assert.equal(final.error?.code, 'cancelled');
      await until('onSettled', async () => settled.length === 1);
      assert.equal(settled[0]?.id, task.id);
      assert.equal(settled[0]?.cancelled, true);
    });

    test('progress and stage reported by the handler are visible while it runs', async () => {
      const q = await openQueue();
      const early = {
        storage: 'local' as const,
        prefix: 'p',
        manifest: { key: 'p/manifest.mpd', url: 'https://cdn.example.com/p/manifest.mpd' },
        hlsMaster: { key: 'p/master.m3u8' },
        renditions: [{ name: 'video_360p', width: 640, height: 360, bitrate: 550_000 }],
        audio: true,
      };
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let release2!: () => void;
      const gate2 = new Promise<void>((r) => (release2 = r));
      start(
        q,
        async (t, ctx) => {
          ctx.reportProgress('encode', 42, { etaSeconds: 12 });
          await gate2;
          ctx.reportProgress('publish', 97, { earlyOutput: early });
          await gate;
          return output(t.id);
        },
        { concurrency: 1 },
      );
      const { task } = await q.submit({ videoFilename: 'p.mp4' });
      const seen = await until('progress 42 in stage encode', async () => {
        const t = await q.get(task.id);
        return t?.status === 'processing' && t.stage === 'encode' && t.progress === 42 ? t : undefined;
      });
      assert.equal(seen.attempts, 1);
      assert.equal(seen.etaSeconds, 12);
      assert.equal(seen.earlyOutput, undefined);
      assert.equal((await q.counts()).processing, 1);
      assert.equal((await q.list({ limit: 1, status: 'processing' })).tasks[0]?.id, task.id);
      release2();
      const playable = await until('playable in stage publish', async () => {
        const t = await q.get(task.id);
        return t?.stage === 'publish' ? t : undefined;
      });
      assert.deepEqual(playable.earlyOutput, early, 'an early package is shown while processing');
      release();
      const final = await finalRecord(q, task.id);
      assert.equal(final.status, 'completed');
      assert.equal(final.progress, 100);
      assert.equal(final.etaSeconds, undefined);
      assert.equal(final.earlyOutput, undefined, 'only while processing: once completed, the output says it');
      assert.deepEqual(final.output, output(task.id));
      assert.deepEqual(await q.counts(), { queued: 0, processing: 0, completed: 1, failed: 0 });
    });

    test('a transient failure is retried after a backoff; the next attempt can succeed', async () => {
      const q = await openQueue(3);
      const attempts: number[] = [];
      const settled: TaskRecord[] = [];
      start(
        q,
        async (t, ctx) => {
          attempts.push(ctx.attempt);
          if (ctx.attempt === 1) throw new TaskFailure('storage_error', 'storage unreachable');
          return output(t.id);
        },
        { concurrency: 1, onSettled: (t) => settled.push(t) },
      );
      const { task } = await q.submit({ videoFilename: 'retry.mp4' });
      const final = await finalRecord(q, task.id);
      assert.equal(final.status, 'completed', JSON.stringify(final.error));
      assert.deepEqual(attempts, [1, 2]);
      assert.equal(final.attempts, 2);
      await until('onSettled', async () => settled.length === 1);
      assert.equal(settled[0]?.status, 'completed');
    });

    test('a task waiting for its retry, and its next attempt, start again from 0 %', async () => {
      const q = await openQueue(3);
      const atStart: (TaskRecord | undefined)[] = [];
      start(
        q,
        async (t, ctx) => {
          atStart.push(await q.get(t.id));
          if (ctx.attempt > 1) return output(t.id);
          ctx.reportProgress('encode', 60, { etaSeconds: 30 });
          await until('progress 60 recorded', async () => (await q.get(t.id))?.progress === 60);
          throw new TaskFailure('storage_error', 'storage unreachable');
        },
        { concurrency: 1 },
      );
      const { task } = await q.submit({ videoFilename: 'again.mp4' });
      // The wait between the attempts is short: looked at closely.
      const deadline = Date.now() + 15_000;
      let waiting: TaskRecord | undefined;
      while (!waiting && Date.now() < deadline) {
        const t = await q.get(task.id);
        if (t?.status === 'queued' && t.attempts === 1) waiting = t;
        else if (t?.status === 'completed') assert.fail('the retry wait was not seen');
        else await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(waiting, 'the task waited for its retry');
      assert.equal(waiting.progress, 0, "not the failed attempt's 60 %");
      assert.equal(waiting.etaSeconds, undefined);
      // Its status says why the last attempt failed and when the next one is due.
      assert.equal(waiting.stage, 'retrying');
      const doc = toStatusDocument(waiting);
      assert.equal(doc.error, 'storage unreachable');
      assert.equal(doc.error_code, 'storage_error');
      assert.ok(doc.next_run_at, 'next_run_at is set while waiting for the retry');
      assert.ok(Math.abs(Date.parse(doc.next_run_at) - Date.now()) < 10_000, doc.next_run_at);
      const final = await finalRecord(q, task.id);
      assert.equal(final.status, 'completed');
      assert.equal(atStart.length, 2);
      assert.equal(atStart[1]?.progress, 0, 'the second attempt starts at 0 %');
      assert.equal(atStart[1]?.etaSeconds, undefined);
    });

    test('transient failures stop after the last attempt', async () => {
      const q = await openQueue(2);
      let runs = 0;
      start(
        q,
        async () => {
          runs++;
          throw new TaskFailure('storage_error', 'storage unreachable');
        },
        { concurrency: 1 },
      );
      const { task } = await q.submit({ videoFilename: 'down.mp4' });
      const final = await finalRecord(q, task.id);
      assert.equal(final.status, 'failed');
      assert.equal(final.error?.code, 'storage_error');
      assert.equal(final.error?.message, 'storage unreachable');
      assert.equal(runs, 2);
    });

    test('a permanent failure is not retried; unknown errors do not leak their message', async () => {
      const q = await openQueue(3);
      const runs = new Map<string, number>();
      start(
        q,
        async (t) => {
          runs.set(t.request.videoFilename, (runs.get(t.request.videoFilename) ?? 0) + 1);
          if (t.request.videoFilename === 'text.mp4') throw new TaskFailure('not_a_video', 'not a video');
          throw new Error('secret internal detail /srv/path');
        },
        { concurrency: 1 },
      );
      const bad = await q.submit({ videoFilename: 'text.mp4' });
      const final = await finalRecord(q, bad.task.id);
      assert.equal(final.status, 'failed');
      assert.equal(final.error?.code, 'not_a_video');
      assert.equal(final.error?.message, 'not a video');
      assert.equal(final.cancelled, undefined);
      assert.equal(runs.get('text.mp4'), 1);

      const odd = await q.submit({ videoFilename: 'odd.mp4' });
      const oddFinal = await finalRecord(q, odd.task.id);
      assert.equal(oddFinal.error?.code, 'internal');
      assert.ok(!oddFinal.error?.message.includes('secret'));
      assert.equal(runs.get('odd.mp4'), 3, 'internal errors count as transient');
    });

    test('with two workers every task runs once and is settled exactly once', async () => {
      const q = await openQueue(1);
      const runs = new Map<string, number>();
      const settled = new Map<string, number>();
      const handler: TaskHandler = async (t) => {
        runs.set(t.id, (runs.get(t.id) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 20));
        if (t.request.videoFilename.startsWith('bad')) throw new TaskFailure('not_a_video', 'no');
        return output(t.id);
      };
      const onSettled = (t: TaskRecord) => {
        assert.ok(t.status === 'completed' || t.status === 'failed', 'settled with a final status');
        settled.set(t.id, (settled.get(t.id) ?? 0) + 1);
      };
      start(q, handler, { concurrency: 2, onSettled });
      start(q, handler, { concurrency: 2, onSettled });
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        ids.push((await q.submit({ videoFilename: `${i % 4 === 0 ? 'bad' : 'ok'}${i}.mp4` })).task.id);
      }
      for (const id of ids) await finalRecord(q, id);
      await until('all settled', async () => settled.size === ids.length);
      await new Promise((r) => setTimeout(r, 300));
      for (const id of ids) {
        assert.equal(settled.get(id), 1, `settled once: ${id}`);
        assert.equal(runs.get(id), 1, `ran once: ${id}`);
      }
      assert.deepEqual(await q.counts(), { queued: 0, processing: 0, completed: 6, failed: 2 });
    });

    test('closing a worker past its grace hands the running task back; another worker completes it', async () => {
      const q = await openQueue();
      const started = new Set<string>();
      const aborted = new Map<string, unknown>();
      const settled: TaskRecord[] = [];
      const first = start(q, untilAborted(started, aborted), {
        concurrency: 1,
        onSettled: (t) => settled.push(t),
      });
      const { task } = await q.submit({ videoFilename: 'long.mp4' });
      await until('the handler to start', async () => started.has(task.id));
      await first.close(200);
      assert.ok(aborted.has(task.id), 'the running handler was aborted');
      const back = await q.get(task.id);
      assert.equal(back?.status, 'queued');
      assert.equal(back?.error, undefined);
      assert.equal(settled.length, 0, 'a hand-back is not a final outcome');

      const attempts: number[] = [];
      start(
        q,
        async (t, ctx) => {
          attempts.push(ctx.attempt);
          return output(t.id);
        },
        { concurrency: 1 },
      );
      const final = await finalRecord(q, task.id);
      assert.equal(final.status, 'completed');
      assert.deepEqual(attempts, [1], 'a hand-back does not count as an attempt');
      assert.equal(final.attempts, 1);
    });

    test('closing a worker within its grace lets the running task finish', async () => {
      const q = await openQueue();
      let started = false;
      const w = start(
        q,
        async (t) => {
          started = true;
          await new Promise((r) => setTimeout(r, 500));
          return output(t.id);
        },
        { concurrency: 1 },
      );
      const { task } = await q.submit({ videoFilename: 'short.mp4' });
      await until('the handler to start', async () => started);
      await w.close(10_000);
      assert.equal((await q.get(task.id))?.status, 'completed');
      // The closed worker takes nothing more.
      const next = await q.submit({ videoFilename: 'next.mp4' });
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await q.get(next.task.id))?.status, 'queued');
    });

    test('maxQueued: a new task past the limit is refused, a repeated idempotent request is not', async () => {
      const q = await openQueue();
      const first = await q.submit({ videoFilename: 'a.mp4' }, { idempotencyKey: 'k-a', maxQueued: 2 });
      await q.submit({ videoFilename: 'b.mp4' }, { maxQueued: 2 });
      await assert.rejects(q.submit({ videoFilename: 'c.mp4' }, { maxQueued: 2 }), QueueFullError);
      const again = await q.submit({ videoFilename: 'a.mp4' }, { idempotencyKey: 'k-a', maxQueued: 2 });
      assert.equal(again.outcome, 'existing');
      assert.equal(again.task.id, first.task.id);
      assert.equal((await q.counts()).queued, 2, 'nothing was added');
    });

    test('setCallbackState is kept in the record', async () => {
      const q = await openQueue();
      start(q, quick, { concurrency: 1 });
      const { task } = await q.submit({ videoFilename: 'cb.mp4', callbackUrl: 'http://x/cb' });
      await finalRecord(q, task.id);
      await q.setCallbackState(task.id, { url: 'http://x/cb', status: 'delivered', attempts: 2 });
      const got = await q.get(task.id);
      assert.deepEqual(got?.callback, { url: 'http://x/cb', status: 'delivered', attempts: 2 });
      assert.equal(got?.status, 'completed');
    });

    test('claimCallback replaces the state only if it is still the one read: one claimer wins', async () => {
      const q = await openQueue();
      const { task } = await q.submit({ videoFilename: 'claim.mp4' });
      const read = { url: 'http://x/…', status: 'pending' as const, attempts: 1, nextAttemptAt: 'T1' };
      await q.setCallbackState(task.id, read);
      const mine = { ...read, nextAttemptAt: 'T2' };
      const theirs = { ...read, nextAttemptAt: 'T3' };
      assert.equal(await q.claimCallback(task.id, read, mine), true);
      assert.equal(
        await q.claimCallback(task.id, read, theirs),
        false,
        'the state changed since it was read',
      );
      assert.deepEqual((await q.get(task.id))?.callback, mine);
    });

    test('pendingCallbacks lists finished tasks whose callback is pending, oldest first, until it settles', async () => {
      const q = await openQueue();
      start(q, quick, { concurrency: 1 });
      const ids: string[] = [];
      for (const name of ['a.mp4', 'b.mp4', 'c.mp4']) {
        const { task } = await q.submit({ videoFilename: name, callbackUrl: 'http://x/cb' });
        await finalRecord(q, task.id);
        ids.push(task.id);
      }
      const queued = await openQueue();
      const waiting = await queued.submit({ videoFilename: 'not-run.mp4' });
      const pending = { url: 'http://x/…', status: 'pending' as const, attempts: 1 };
      for (const id of ids) await q.setCallbackState(id, pending);
      // A task not finished yet has no callback to send, whatever its record says.
      await queued.setCallbackState(waiting.task.id, pending);
      assert.deepEqual(
        (await q.pendingCallbacks(10)).map((t) => t.id),
        ids,
      );
      assert.deepEqual(
        (await q.pendingCallbacks(2)).map((t) => t.id),
        ids.slice(0, 2),
      );
      assert.deepEqual(
        (await queued.pendingCallbacks(10)).map((t) => t.id),
        [],
      );
      await q.setCallbackState(ids[0]!, { ...pending, status: 'delivered', attempts: 2 });
      await q.setCallbackState(ids[1]!, { ...pending, status: 'failed', attempts: 5 });
      const left = await q.pendingCallbacks(10);
      assert.deepEqual(
        left.map((t) => [t.id, t.callback?.attempts]),
        [[ids[2], 1]],
      );
    });
  });
}
