import type { Logger } from 'pino';
import type { MediaTools } from './tools.js';

/** What every stage gets from its caller: the pipeline knows nothing of HTTP, queues or buckets. */
export interface StageContext {
  tools: MediaTools;
  logger: Logger;
  signal?: AbortSignal;
  /** A child process that writes nothing for this long is killed. */
  idleTimeoutMs: number;
  /** A child process that runs longer than this is killed. */
  maxRuntimeMs: number;
  /** The programs' temporary directory (TMPDIR), inside the task's work directory: see RunProcessOptions. */
  tempDir: string;
}

/** Stage name and 0..1 fraction of that stage done. */
export type StageProgress = (fraction: number) => void;
