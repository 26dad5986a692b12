import { createHash } from 'node:crypto';
import { withoutKeys } from './encryption.js';
import type { FailureCode } from './failures.js';
import type {
  SubtitleRequest as WireSubtitleRequest,
  TaskRequest as WireTaskRequest,
} from './schemas/encode-request.js';
import type { QcReport } from './schemas/qc-report.js';
import type {
  AudioTrackOutput as WireAudioTrackOutput,
  CallbackState as WireCallbackState,
  EarlyOutput as WireEarlyOutput,
  OutputWarning as WireOutputWarning,
  PackageOutput,
  RenditionOutput as WireRenditionOutput,
  SubtitleOutput as WireSubtitleOutput,
  TaskStatus,
  ThumbnailsOutput as WireThumbnailsOutput,
  Timings,
} from './schemas/status-document.js';
import { toWire, type Domain } from './schemas/wire.js';

export { taskStatuses, type TaskStatus } from './schemas/names.js';

export type { WireCallbackState, WireEarlyOutput, WireTaskRequest };

// The domain's records, camelCase; the schemas' types (snake_case) are the wire's, mapped by fromWire/toWire.
export type TaskRequest = Domain<WireTaskRequest>;
export type SubtitleRequest = Domain<WireSubtitleRequest>;
export type AudioTrackOutput = Domain<WireAudioTrackOutput>;
export type CallbackState = Domain<WireCallbackState>;
export type EarlyOutput = Domain<WireEarlyOutput>;
export type OutputWarning = Domain<WireOutputWarning>;
export type RenditionOutput = Domain<WireRenditionOutput>;
export type SubtitleOutput = Domain<WireSubtitleOutput>;
export type ThumbnailsOutput = Domain<WireThumbnailsOutput>;

/** A task's output as the wire (status document `output` with its timings, encode_speed, qc) and stores show it. */
export type WireTaskOutput = PackageOutput & {
  /** Seconds spent per stage (fetch, probe, encode, package, poster, qc, publish) and in total. */
  timings?: Timings;
  /** Media seconds encoded per second of encoding. */
  encode_speed?: number;
  /** The checks the package passed before it was published (absent with QC_MODE=off). */
  qc?: QcReport;
};

/** Where the finished package is, with what the run measured (the status document shows these beside it). */
export type TaskOutput = Domain<WireTaskOutput>;

export interface TaskRecord {
  id: string;
  request: TaskRequest;
  status: TaskStatus;
  stage?: string;
  /** 0..100 */
  progress: number;
  /** Seconds left, estimated from the measured encoding speed, while processing (when the queue keeps it). */
  etaSeconds?: number;
  /** While processing: a first package (EARLY_MANIFEST) is published here, so its manifest already plays. */
  earlyOutput?: EarlyOutput;
  /** Why the task failed; while queued for a retry, why its last attempt failed. */
  error?: { code: FailureCode; message: string };
  /**
   * While queued again (`retrying` after a failed attempt, `requeued` after a run lost with its process): when
   * it is due to run again (a free worker takes it then).
   */
  nextRunAt?: string;
  output?: TaskOutput;
  /** A split task's chunk jobs (issue 25): how many, and how many are done. */
  chunks?: { total: number; done: number };
  cancelled?: boolean;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  callback?: CallbackState;
}

export function isFinal(status: TaskStatus): boolean {
  return status === 'completed' || status === 'failed';
}

/** The request as a task's record keeps it once the task has ended: no encryption key. */
export function requestWithoutKeys(request: TaskRequest): TaskRequest {
  return request.encryption ? { ...request, encryption: withoutKeys(request.encryption) } : request;
}

/**
 * What requests under one idempotency key are compared by: the request as stored, with `metadata`'s keys in
 * a fixed order (a client's JSON library may write `{"a":1,"b":2}` one time and `{"b":2,"a":1}` the next).
 */
export function requestHash(request: TaskRequest): string {
  // Over the wire form, as stored before the domain was camelCase: a key's earlier tasks still match.
  const wire = toWire<WireTaskRequest>(request);
  const canonical = wire.metadata ? { ...wire, metadata: sortedKeys(wire.metadata) } : wire;
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortedKeys((value as Record<string, unknown>)[k])]),
  );
}
