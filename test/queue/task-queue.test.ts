import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { createLogger } from '../../src/process/logger.js';
import { BullMqTaskQueue } from '../../src/queue/bullmq-queue.js';
import { SqliteTaskQueue } from '../../src/queue/sqlite-queue.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { taskQueueContract } from './task-queue-contract.js';

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
let root: string;
let redis: RedisServer;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'dvc-queue-test-'));
  redis = await startRedisServer();
});
after(async () => {
  await redis?.stop();
  await rm(root, { recursive: true, force: true });
});

taskQueueContract({
  name: 'SqliteTaskQueue',
  open: async ({ maxAttempts }) =>
    new SqliteTaskQueue({
      path: path.join(root, `${randomUUID()}.db`),
      leaseMs: 2000,
      maxAttempts,
      logger,
      pollMs: 100,
      retryBackoffMs: 100,
    }),
});

taskQueueContract({
  name: 'BullMqTaskQueue',
  // A prefix of its own per queue: no test sees another's tasks on the shared server.
  open: async ({ maxAttempts }) =>
    new BullMqTaskQueue(
      {
        kind: 'redis',
        url: redis.url,
        prefix: `test-${randomUUID().slice(0, 8)}`,
        maxAttempts,
        retentionSeconds: 3600,
        leaseMs: 2000,
      },
      logger,
      { retryBackoffMs: 100, cancelPollMs: 200 },
    ),
});
