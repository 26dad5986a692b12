import type { TaskRecord } from '../queue/task.js';

/** The public JSON view of a task, as GET /status and callbacks show it. */
export function toStatusDocument(task: TaskRecord) {
  return {
    task_id: task.id,
    status: task.status,
    stage: task.stage ?? null,
    progress: task.progress,
    error: task.status === 'failed' ? (task.error?.message ?? 'failed') : null,
    error_code: task.status === 'failed' ? (task.error?.code ?? null) : null,
    cancelled: task.cancelled ?? false,
    video_filename: task.request.video_filename,
    attempts: task.attempts,
    created_at: task.createdAt,
    updated_at: task.updatedAt,
    output: task.status === 'completed' ? (task.output ?? null) : null,
    callback: task.callback ?? null,
  };
}

export type StatusDocument = ReturnType<typeof toStatusDocument>;

const location = {
  type: 'object',
  properties: { key: { type: 'string' }, url: { type: 'string' } },
} as const;

export const statusDocumentSchema = {
  type: 'object',
  required: ['task_id', 'status', 'progress', 'created_at', 'updated_at'],
  properties: {
    task_id: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'processing', 'completed', 'failed'] },
    stage: { type: ['string', 'null'] },
    progress: { type: 'number', minimum: 0, maximum: 100 },
    error: { type: ['string', 'null'], description: 'Why the task failed, in words a person understands.' },
    error_code: { type: ['string', 'null'] },
    cancelled: { type: 'boolean' },
    video_filename: { type: 'string' },
    attempts: { type: 'integer' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    output: {
      type: ['object', 'null'],
      properties: {
        storage: { type: 'string', enum: ['local', 's3'] },
        bucket: { type: 'string' },
        prefix: { type: 'string' },
        manifest: location,
        hls_master: location,
        poster: location,
        renditions: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              width: { type: 'integer' },
              height: { type: 'integer' },
              bitrate: { type: 'integer' },
            },
          },
        },
        audio: { type: 'boolean' },
        duration: { type: 'number' },
        files: { type: 'integer' },
        bytes: { type: 'integer' },
      },
    },
    callback: {
      type: ['object', 'null'],
      properties: {
        url: { type: 'string' },
        status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
        attempts: { type: 'integer' },
        last_error: { type: 'string' },
        delivered_at: { type: 'string' },
      },
    },
  },
} as const;
