import { publicEncryptionOptions } from '../domain/encryption.js';
import { encodeOptionNames, type EncodeOptions } from '../domain/schemas/encode-request.js';
import type { StatusDocument } from '../domain/schemas/status-document.js';
import type { TaskRecord } from '../domain/task.js';

/**
 * The public JSON view of a task, as GET /status, GET /tasks and callbacks show it. `queue_position` is
 * added by the routes that can ask the queue (it needs a lookup); callbacks are sent for final tasks only.
 */
export function toStatusDocument(task: TaskRecord): StatusDocument {
  const { request } = task;
  const output = task.status === 'completed' ? task.output : undefined;
  const options = Object.fromEntries(
    encodeOptionNames.filter((name) => request[name] !== undefined).map((name) => [name, request[name]]),
  ) as EncodeOptions;
  // Never as given: the request holds the keys until the task ends.
  if (request.encryption !== undefined) options.encryption = publicEncryptionOptions(request.encryption);
  const doc: StatusDocument = {
    task_id: task.id,
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
    error_code: task.status === 'failed' || task.status === 'queued' ? (task.error?.code ?? null) : null,
    cancelled: task.cancelled ?? false,
    video_filename: request.video_filename,
    options,
    metadata: request.metadata ?? null,
    attempts: task.attempts,
    created_at: task.createdAt,
    updated_at: task.updatedAt,
    eta_seconds: task.status === 'processing' ? (task.etaSeconds ?? null) : null,
    next_run_at: task.status === 'queued' ? (task.nextRunAt ?? null) : null,
    ...(task.chunks ? { chunks: task.chunks } : {}),
    playable:
      task.status === 'completed'
        ? !!(output?.manifest ?? output?.hls_master)
        : task.status === 'processing' && !!task.earlyOutput,
    early_output: task.status === 'processing' ? (task.earlyOutput ?? null) : null,
    output: null,
    timings: output?.timings ?? null,
    encode_speed: output?.encode_speed ?? null,
    qc: output?.qc ?? null,
    callback: task.callback ?? null,
  };
  if (output) {
    const { timings: _t, encode_speed: _s, qc: _q, ...rest } = output;
    doc.output = rest;
  }
  return doc;
}
