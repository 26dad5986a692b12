import { publicEncryptionOptions } from '../domain/encryption.js';
import { encodeOptionNames, type EncodeOptions } from '../domain/schemas/encode-request.js';
import type { StatusDocument } from '../domain/schemas/status-document.js';
import { camelCase, toWire, type Domain } from '../domain/schemas/wire.js';
import type { TaskRecord } from '../domain/task.js';

/**
 * The public JSON view of a task, as GET /status, GET /tasks and callbacks show it. `queue_position` is
 * added by the routes that can ask the queue (it needs a lookup); callbacks are sent for final tasks only.
 */
export function toStatusDocument(task: TaskRecord): StatusDocument {
  const { request } = task;
  const output = task.status === 'completed' ? task.output : undefined;
  const given = request as Record<string, unknown>;
  const options = Object.fromEntries(
    encodeOptionNames
      .map(camelCase)
      .filter((name) => given[name] !== undefined)
      .map((name) => [name, given[name]]),
  ) as Domain<EncodeOptions>;
  // Never as given: the request holds the keys until the task ends.
  if (request.encryption !== undefined) options.encryption = publicEncryptionOptions(request.encryption);
  const doc: Domain<StatusDocument> = {
    taskId: task.id,
    status: task.status,
    stage: task.stage ?? null,
    progress: task.progress,
    // While queued for a retry: the last attempt's failure.
    error:
      task.status === 'failed'
        ? (task.error?.message ?? 'failed')
        : task.status === 'queued'
          ? (task.error?.message ?? null)
          : null,
    errorCode: task.status === 'failed' || task.status === 'queued' ? (task.error?.code ?? null) : null,
    cancelled: task.cancelled ?? false,
    videoFilename: request.videoFilename,
    options,
    metadata: request.metadata ?? null,
    attempts: task.attempts,
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
    etaSeconds: task.status === 'processing' ? (task.etaSeconds ?? null) : null,
    nextRunAt: task.status === 'queued' ? (task.nextRunAt ?? null) : null,
    ...(task.chunks ? { chunks: task.chunks } : {}),
    playable:
      task.status === 'completed'
        ? !!(output?.manifest ?? output?.hlsMaster)
        : task.status === 'processing' && !!task.earlyOutput,
    earlyOutput: task.status === 'processing' ? (task.earlyOutput ?? null) : null,
    output: null,
    timings: output?.timings ?? null,
    encodeSpeed: output?.encodeSpeed ?? null,
    qc: output?.qc ?? null,
    callback: task.callback ?? null,
  };
  if (output) {
    const { timings: _t, encodeSpeed: _s, qc: _q, ...rest } = output;
    doc.output = rest;
  }
  return toWire<StatusDocument>(doc);
}
