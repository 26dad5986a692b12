import type { TaskRecord } from '../domain/task.js';
import { qcCheckNames } from '../domain/qc-report.js';

/**
 * The public JSON view of a task, as GET /status, GET /tasks and callbacks show it. `queue_position` is
 * added by the routes that can ask the queue (it needs a lookup); callbacks are sent for final tasks only.
 */
export function toStatusDocument(task: TaskRecord): StatusDocument {
  const { request } = task;
  const output = task.status === 'completed' ? task.output : undefined;
  const options: Record<string, unknown> = {};
  if (request.profile !== undefined) options.profile = request.profile;
  if (request.ladder !== undefined) options.ladder = request.ladder;
  if (request.segment_duration !== undefined) options.segment_duration = request.segment_duration;
  if (request.formats !== undefined) options.formats = request.formats;
  if (request.output_prefix !== undefined) options.output_prefix = request.output_prefix;
  if (request.audio_tracks !== undefined) options.audio_tracks = request.audio_tracks;
  if (request.subtitles !== undefined) options.subtitles = request.subtitles;
  if (request.default_audio_language !== undefined)
    options.default_audio_language = request.default_audio_language;
  const doc: StatusDocument = {
    task_id: task.id,
    status: task.status,
    stage: task.stage ?? null,
    progress: task.progress,
    error: task.status === 'failed' ? (task.error?.message ?? 'failed') : null,
    error_code: task.status === 'failed' ? (task.error?.code ?? null) : null,
    cancelled: task.cancelled ?? false,
    video_filename: request.video_filename,
    options,
    metadata: request.metadata ?? null,
    attempts: task.attempts,
    created_at: task.createdAt,
    updated_at: task.updatedAt,
    eta_seconds: task.status === 'processing' ? (task.etaSeconds ?? null) : null,
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

export interface StatusDocument {
  task_id: string;
  status: TaskRecord['status'];
  stage: string | null;
  progress: number;
  error: string | null;
  error_code: string | null;
  cancelled: boolean;
  video_filename: string;
  options: Record<string, unknown>;
  metadata: Record<string, unknown> | null;
  attempts: number;
  created_at: string;
  updated_at: string;
  queue_position?: number | null;
  eta_seconds: number | null;
  playable: boolean;
  early_output: NonNullable<TaskRecord['earlyOutput']> | null;
  output: Omit<NonNullable<TaskRecord['output']>, 'timings' | 'encode_speed' | 'qc'> | null;
  timings: Record<string, number> | null;
  encode_speed: number | null;
  qc: NonNullable<TaskRecord['output']>['qc'] | null;
  callback: TaskRecord['callback'] | null;
}

const location = {
  type: 'object',
  properties: {
    key: { type: 'string', description: 'Key in the output storage.' },
    url: { type: 'string', description: 'Public URL, when PUBLIC_BASE_URL is set.' },
  },
} as const;

const rendition = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    width: { type: 'integer' },
    height: { type: 'integer' },
    bitrate: { type: 'integer', description: 'Target video bitrate, bit/s.' },
  },
} as const;

export const qcReportSchema = {
  type: ['object', 'null'],
  description:
    'The checks the package passed before it was published (null until completed, or with QC_MODE=off). ' +
    'A failed check fails the task with error_code qc_failed unless QC_MODE=warn.',
  properties: {
    passed: { type: 'boolean' },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', enum: qcCheckNames },
          passed: { type: 'boolean' },
          detail: { type: 'string' },
        },
      },
    },
    quality: {
      type: 'array',
      description: 'With QC_QUALITY=true: PSNR (dB) and SSIM per rendition against the source scaled to it.',
      items: {
        type: 'object',
        properties: {
          rendition: { type: 'string' },
          psnr: { type: 'number' },
          ssim: { type: 'number' },
          error: { type: 'string', description: 'Why this rendition could not be measured.' },
        },
      },
    },
  },
} as const;

export const statusDocumentSchema = {
  type: 'object',
  required: ['task_id', 'status', 'progress', 'created_at', 'updated_at'],
  properties: {
    task_id: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'processing', 'completed', 'failed'] },
    stage: {
      type: ['string', 'null'],
      description:
        'What the task is doing: starting, fetch, probe, encode, package, poster, qc, publish, done; ' +
        'retrying or requeued while queued again; failed or cancelled at the end.',
    },
    progress: { type: 'number', minimum: 0, maximum: 100 },
    error: { type: ['string', 'null'], description: 'Why the task failed, in words a person understands.' },
    error_code: {
      type: ['string', 'null'],
      description:
        'input_not_found, invalid_input, not_a_video, limit_exceeded, encode_failed, package_failed, ' +
        'qc_failed, cancelled, timeout, storage_error, storage_denied, disk_full, worker_lost or internal.',
    },
    cancelled: { type: 'boolean' },
    video_filename: { type: 'string' },
    options: {
      type: 'object',
      description:
        'The per-request options given to POST /encode (profile, ladder, segment_duration, formats, output_prefix, audio_tracks, default_audio_language, subtitles).',
      additionalProperties: true,
    },
    metadata: {
      type: ['object', 'null'],
      description: 'The metadata given to POST /encode, unchanged.',
      additionalProperties: true,
    },
    attempts: { type: 'integer' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    queue_position: {
      type: ['integer', 'null'],
      description:
        'While queued: 1 when the task is next in line. Null when not queued or when the queue backend cannot tell.',
    },
    eta_seconds: {
      type: ['number', 'null'],
      description:
        'While processing: seconds left, from the encoding speed measured so far (null until measured).',
    },
    playable: {
      type: 'boolean',
      description:
        'Whether the manifest at the output location plays: once completed, and while processing when ' +
        'EARLY_MANIFEST published the lowest rung and the audio first (the full ladder then replaces it in place).',
    },
    early_output: {
      type: ['object', 'null'],
      description:
        'While processing, once EARLY_MANIFEST published the lowest rung and the audio: where their manifests ' +
        'are. These are the final keys: the full package replaces them in place when the task completes.',
      properties: {
        storage: { type: 'string', enum: ['local', 's3'] },
        bucket: { type: 'string' },
        prefix: { type: 'string' },
        manifest: location,
        hls_master: location,
        renditions: { type: 'array', description: 'The rungs it holds (the lowest).', items: rendition },
        audio: { type: 'boolean' },
      },
    },
    output: {
      type: ['object', 'null'],
      description: 'Where the package is, once completed.',
      properties: {
        storage: { type: 'string', enum: ['local', 's3'] },
        bucket: { type: 'string' },
        prefix: { type: 'string' },
        media_prefix: {
          type: 'string',
          description:
            "Where this task's segments and media playlists are (below prefix, in a directory of the task's " +
            'own): a later package at the same prefix replaces the manifests and the poster, not these.',
        },
        manifest: location,
        hls_master: location,
        poster: location,
        renditions: { type: 'array', items: rendition },
        audio: { type: 'boolean' },
        audio_tracks: {
          type: 'array',
          description: 'Every audio track packaged; exactly one is the default.',
          items: {
            type: 'object',
            properties: {
              language: { type: 'string', description: 'BCP 47 (`fr`), `und` when the source did not say.' },
              label: { type: 'string', description: "The track's title, else its language's name." },
              channels: { type: 'integer' },
              default: { type: 'boolean', description: 'HLS DEFAULT=YES, DASH role main.' },
              audio_description: { type: 'boolean', description: 'Audio description (visual_impaired).' },
            },
          },
        },
        subtitles: {
          type: 'array',
          description: 'Every text track packaged (WebVTT).',
          items: {
            type: 'object',
            properties: {
              language: { type: 'string', description: 'BCP 47, `und` when nobody said.' },
              label: { type: 'string' },
              forced: { type: 'boolean' },
              source: { type: 'string', description: 'The request’s filename, or `stream N` of the input.' },
            },
          },
        },
        warnings: {
          type: 'array',
          description: 'What was left out and why (`subtitles_skipped`: a picture-based subtitle stream).',
          items: {
            type: 'object',
            properties: { code: { type: 'string' }, message: { type: 'string' } },
          },
        },
        duration: { type: 'number', description: 'Seconds of media.' },
        files: { type: 'integer' },
        bytes: { type: 'integer' },
      },
    },
    timings: {
      type: ['object', 'null'],
      description:
        'Once completed: seconds per stage (fetch, probe, encode, package, poster, qc, publish) and total.',
      additionalProperties: { type: 'number' },
    },
    encode_speed: {
      type: ['number', 'null'],
      description: 'Once completed: seconds of media encoded per second (× realtime), whole ladder at once.',
    },
    qc: qcReportSchema,
    callback: {
      type: ['object', 'null'],
      properties: {
        url: {
          type: 'string',
          description: "The callback URL's origin only (its path and query may hold a secret).",
        },
        status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
        attempts: { type: 'integer' },
        last_error: { type: 'string' },
        delivered_at: { type: 'string' },
        next_attempt_at: {
          type: 'string',
          description: 'While pending: when the next attempt is due (a worker takes it up if long overdue).',
        },
      },
    },
  },
} as const;
