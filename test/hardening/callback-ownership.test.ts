import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { toStatusDocument } from '../../src/api/status-document.js';
import { CallbackNotifier } from '../../src/callbacks/notifier.js';
import { createLogger } from '../../src/process/logger.js';
import { SqliteTaskQueue } from '../../src/queue/sqlite-queue.js';
import { minimalOutput } from '../helpers/task-output.js';

/** A receiver that refuses every delivery, counting them. */
async function refusingReceiver() {
  let posts = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      posts++;
      res.writeHead(503).end('down');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    posts: () => posts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('a callback delivery has one owner', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-callback-owner-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a sender whose delivery another process took over stops sending and writing', async () => {
    const logger = createLogger('silent');
    const queue = new SqliteTaskQueue({
      path: path.join(dir, 'tasks.db'),
      leaseMs: 5000,
      maxAttempts: 1,
      logger,
    });
    const receiver = await refusingReceiver();
    const notifier = new CallbackNotifier(queue, {
      defaultUrl: receiver.url,
      maxAttempts: 10,
      backoffMs: 1500,
      timeoutMs: 2000,
      allowPrivate: true,
      logger,
      render: toStatusDocument,
    });
    const worker = queue.startWorker(async (task) => minimalOutput(task.id), {
      concurrency: 1,
      onSettled: (t) => notifier.notify(t),
    });
    try {
      const { task } = await queue.submit({ videoFilename: 'owned.mp4' });
      // The first attempt is refused; the sender waits 1.5 s before the next.
      while (receiver.posts() < 1) await new Promise((r) => setTimeout(r, 20));
      let current = (await queue.get(task.id))?.callback;
      while (!current?.lastError) {
        await new Promise((r) => setTimeout(r, 20));
        current = (await queue.get(task.id))?.callback;
      }
      // Another process, judging this one gone, claims the delivery.
      const theirs = { ...current, nextAttemptAt: new Date(Date.now() + 60_000).toISOString() };
      assert.equal(await queue.claimCallback(task.id, current, theirs), true);
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(receiver.posts(), 1, 'no further attempt from the sender that lost the delivery');
      assert.deepEqual(
        (await queue.get(task.id))?.callback,
        theirs,
        'and no write over the new owner’s state',
      );
    } finally {
      await notifier.close(0);
      await worker.close();
      await queue.close();
      await receiver.close();
    }
  });
});
