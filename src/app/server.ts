import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp, buildProbeApp } from '../api/app.js';
import { createServices, type Services } from './services.js';
import { sweepOrphanWorkDirs } from '../jobs/work-dirs.js';
import { startSweeps } from '../jobs/sweeps.js';
import { settleCompleted, withdrawAbandoned } from '../jobs/process-task.js';
import { UPLOADS_DIR } from '../api/routes/upload-names.js';
import type { Config } from '../config/config.js';
import { checkTools, toolNeedsFor } from '../pipeline/tools.js';
import { configuredCodecs } from '../jobs/encode-settings.js';
import type { TaskWorker } from '../queue/task-queue.js';
import { createTaskProcessor } from '../jobs/process-task.js';
import { HostInputs } from '../jobs/host-inputs.js';
import { createStepProcessor, removeChunkWork } from '../jobs/split-steps.js';

export interface RunOptions {
  api: boolean;
  worker: boolean;
  /** How often a worker process sweeps what dead processes left (default 10 minutes). */
  sweepIntervalMs?: number;
}

export interface RunningService {
  services: Services;
  app?: FastifyInstance;
  worker?: TaskWorker;
  /** The address the API listens on (or, in a process without the API, its probe and metrics server). */
  address?: string;
  /** Stops taking requests and tasks, lets running tasks finish within the grace period, closes everything. */
  close(): Promise<void>;
}

/** How long an upload's `.part` file may go unwritten before a starting API process removes it. */
const STALE_PART_MS = 60 * 60_000;

/** Starts the API and/or an in-process worker with this configuration. */
export async function startService(
  config: Config,
  logger: Logger,
  options: RunOptions,
): Promise<RunningService> {
  const services = await createServices(config, logger);
  let app: FastifyInstance | undefined;
  let worker: TaskWorker | undefined;
  let stopSweeps: (() => void) | undefined;
  try {
    if (options.worker) {
      const versions = await checkTools(
        services.tools,
        toolNeedsFor(config.encode.scaler, configuredCodecs(config)),
      );
      logger.info(versions, 'media tools');
      await sweepOrphanWorkDirs(config.workDir, logger);
      // A process killed while publishing locally leaves `.part` files (never listed nor served): swept now
      // and periodically, with the work directories of processes that died.
      stopSweeps = startSweeps({
        workDir: config.workDir,
        output: services.output,
        logger,
        intervalMs: options.sweepIntervalMs,
      });
      const hostInputs = new HostInputs(config.workDir, logger);
      worker = services.queue.startWorker(
        createTaskProcessor({
          config,
          tools: services.tools,
          input: services.input,
          output: services.output,
          logger,
          metrics: services.metrics,
        }),
        {
          concurrency: config.workerConcurrency,
          stepHandler: createStepProcessor({
            config,
            tools: services.tools,
            input: services.input,
            output: services.output,
            logger,
            metrics: services.metrics,
            hostInputs,
          }),
          onSettled: (task) => {
            services.metrics.taskFinished(task);
            services.notifier.notify(task);
            if (task.status === 'completed') void settleCompleted(task, services);
            void removeChunkWork(task, { ...services, hostInputs });
          },
          onAbandoned: (task, earlierRuns) => void withdrawAbandoned(task, earlierRuns, services),
        },
      );
      // Callbacks that a stopped process left pending (a deploy while a receiver was down) go out now, and
      // those of processes that die later within a minute of falling due.
      services.notifier.startResuming();
    }
    let address: string | undefined;
    if (options.api) {
      // Uploads to a local input directory are written as `.part` files beside their place: a process killed
      // during one leaves its part behind, removed here once nothing has written to it for an hour.
      if (services.input.localFiles) {
        await services.input.localFiles.removeStalePartials(UPLOADS_DIR, STALE_PART_MS).then(
          (removed) =>
            removed && logger.info({ removed }, 'removed uploads a stopped process left unfinished'),
          (err: unknown) => logger.warn({ err }, 'could not look for unfinished uploads'),
        );
      }
      app = await buildApp(services);
      address = await app.listen({ host: config.host, port: config.port });
      if (!worker && config.queue.kind === 'sqlite') {
        // Legitimate (a `worker` process on this host shares the database file), but usually a mistake.
        logger.warn(
          { queue: config.queue.path },
          'no worker in this process and the queue is the local SQLite file: tasks wait until a `worker` ' +
            'process on this host (same STATE_DIR) runs them; QUEUE=redis is the scale-out queue',
        );
      }
    } else if (config.metricsPort !== undefined) {
      app = await buildProbeApp(services);
      address = await app.listen({ host: config.host, port: config.metricsPort });
    }
    logger.info(
      {
        address,
        worker: !!worker,
        input: services.input.description,
        output: services.output.description,
        queue: config.queue.kind,
      },
      'dash-video-converter started',
    );
    let closing: Promise<void> | undefined;
    return {
      services,
      app,
      worker,
      address,
      close: () =>
        (closing ??= (async () => {
          stopSweeps?.();
          const results = await Promise.allSettled([app?.close(), worker?.close(config.shutdownGraceMs)]);
          await services.close();
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (failed) throw failed.reason;
        })()),
    };
  } catch (err) {
    stopSweeps?.();
    await Promise.allSettled([app?.close(), worker?.close(0)]);
    await services.close();
    throw err;
  }
}

/** Closes the service on SIGTERM or SIGINT (a second signal exits at once). */
export function closeOnSignals(running: RunningService, logger: Logger, deadlineMs?: number): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    if (deadlineMs !== undefined) {
      // A stop must end even when a dependency it talks to on the way out (Redis, to hand running tasks
      // back) is unreachable: BullMQ then waits for it forever. Tasks not handed back are found stalled.
      setTimeout(() => {
        logger.error(
          { deadlineSeconds: deadlineMs / 1000 },
          'shutdown did not finish in time (is the queue reachable?): exiting now',
        );
        process.exit(1);
      }, deadlineMs).unref();
    }
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
