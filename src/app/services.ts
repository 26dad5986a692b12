import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config, QueueSettings, StorageSettings } from '../config/config.js';
import { CallbackNotifier } from '../callbacks/notifier.js';
import { toStatusDocument } from '../api/status-document.js';
import { ServiceMetrics } from '../metrics/metrics.js';
import { defaultTools, listVideoEncoders, type MediaTools } from '../pipeline/tools.js';
import { SqliteTaskQueue } from '../queue/sqlite-queue.js';
import type { TaskQueue } from '../queue/task-queue.js';
import { LocalStorage } from '../storage/local-storage.js';
import type { Storage } from '../storage/storage.js';

/** Everything a process of this service works with, built once from the configuration. */
export interface Services {
  config: Config;
  logger: Logger;
  tools: MediaTools;
  input: Storage;
  output: Storage;
  queue: TaskQueue;
  notifier: CallbackNotifier;
  /** Prometheus metrics of this instance, in a registry of its own. */
  metrics: ServiceMetrics;
  /** The video encoders FFmpeg has, read once (again after a failed read), for refusing a codec at submit. */
  videoEncoders(): Promise<Set<string>>;
  close(): Promise<void>;
}

export async function createStorage(settings: StorageSettings, publicBaseUrl?: string): Promise<Storage> {
  if (settings.kind === 'local') {
    await mkdir(settings.root, { recursive: true });
    return new LocalStorage(settings.root, publicBaseUrl);
  }
  const { S3Storage } = await import('../storage/s3-storage.js');
  return new S3Storage(settings, publicBaseUrl);
}

export async function createQueue(settings: QueueSettings, logger: Logger): Promise<TaskQueue> {
  if (settings.kind === 'sqlite') {
    return new SqliteTaskQueue({
      path: settings.path,
      leaseMs: settings.leaseMs,
      maxAttempts: settings.maxAttempts,
      logger,
    });
  }
  const { BullMqTaskQueue } = await import('../queue/bullmq-queue.js');
  return new BullMqTaskQueue(settings, logger);
}

export async function createServices(config: Config, logger: Logger): Promise<Services> {
  await mkdir(config.workDir, { recursive: true });
  const closers: (() => Promise<void>)[] = [];
  try {
    const input = await createStorage(config.input);
    closers.push(() => input.close());
    const output = await createStorage(config.output, config.publicBaseUrl);
    closers.push(() => output.close());
    const queue = await createQueue(config.queue, logger.child({ component: 'queue' }));
    closers.push(() => queue.close());
    const metrics = new ServiceMetrics({ counts: () => queue.counts() });
    const notifier = new CallbackNotifier(queue, {
      defaultUrl: config.callback.url,
      secret: config.callback.secret,
      maxAttempts: config.callback.maxAttempts,
      backoffMs: config.callback.backoffMs,
      timeoutMs: config.callback.timeoutMs,
      allowPrivate: config.callback.allowPrivate,
      logger: logger.child({ component: 'callback' }),
      render: toStatusDocument,
      onFinished: (outcome) => metrics.callbackDeliveries.inc({ outcome }),
    });
    closers.unshift(() => notifier.close());
    let closed: Promise<void> | undefined;
    const tools = defaultTools(config.tools);
    let encoders: Promise<Set<string>> | undefined;
    return {
      config,
      logger,
      tools,
      videoEncoders: () =>
        (encoders ??= listVideoEncoders(tools.ffmpeg).catch((err: unknown) => {
          encoders = undefined;
          throw err;
        })),
      input,
      output,
      queue,
      notifier,
      metrics,
      close: () =>
        (closed ??= (async () => {
          // Every step runs even if one fails; the first failure is reported after all ran.
          const results = [];
          for (const close of closers) results.push(await Promise.allSettled([close()]).then((r) => r[0]!));
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (failed) throw failed.reason;
        })()),
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw err;
  }
}
