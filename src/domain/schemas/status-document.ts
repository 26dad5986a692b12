import { Type, type Static } from '@sinclair/typebox';
import { EncodeOptionsSchema } from './encode-request.js';
import { EncryptionOutputSchema } from './encryption.js';
import { QcReportSchema } from './qc-report.js';
import { taskStatuses } from './names.js';
import { Dictionary, JsonObject, Nullable, StringEnum, videoCodecNames } from './shared.js';

export { taskStatuses, type TaskStatus } from './names.js';

export const PackageLocationSchema = Type.Object({
  key: Type.String({ description: 'Key in the output storage.' }),
  url: Type.Optional(Type.String({ description: 'Public URL, when PUBLIC_BASE_URL is set.' })),
});

export const RenditionSchema = Type.Object({
  name: Type.String(),
  codec: Type.Optional(
    StringEnum(videoCodecNames, {
      description: 'Absent in records from before codecs could be chosen: h264.',
    }),
  ),
  width: Type.Integer(),
  height: Type.Integer(),
  bitrate: Type.Integer({ description: 'Target video bitrate, bit/s.' }),
});

export const AudioTrackOutputSchema = Type.Object({
  language: Type.String({ description: 'BCP 47 (`fr`), `und` when the source did not say.' }),
  label: Type.String({ description: "The track's title, else its language's name." }),
  channels: Type.Integer(),
  default: Type.Boolean({
    description: 'The one track players start with (HLS DEFAULT=YES, DASH role main).',
  }),
  audio_description: Type.Boolean({ description: 'Audio description (disposition visual_impaired).' }),
});

export const SubtitleOutputSchema = Type.Object({
  language: Type.String({ description: 'BCP 47, `und` when nobody said.' }),
  label: Type.String(),
  forced: Type.Boolean(),
  source: Type.String({ description: 'The request’s filename, or `stream N` of the input.' }),
});

export const outputWarningCodes = ['subtitles_skipped'] as const;

export const OutputWarningSchema = Type.Object({
  code: StringEnum(outputWarningCodes),
  message: Type.String(),
});

const storageKind = StringEnum(['local', 's3']);

/** Where the finished package is. Keys are relative to the output storage. */
export const TaskOutputSchema = Type.Object({
  storage: storageKind,
  bucket: Type.Optional(Type.String()),
  prefix: Type.String(),
  // Absent in records from before segments had a directory per task.
  media_prefix: Type.Optional(
    Type.String({
      description:
        "Where this task's segments and media playlists are (below prefix, in a directory of the task's " +
        'own): a later package at the same prefix replaces the manifests and the poster, not these.',
    }),
  ),
  manifest: Type.Optional(PackageLocationSchema),
  hls_master: Type.Optional(PackageLocationSchema),
  poster: PackageLocationSchema,
  thumbnails: Type.Optional(
    Type.Object(
      {
        vtt: PackageLocationSchema,
        sheets: Type.Array(PackageLocationSchema),
        interval: Type.Number({ description: 'Seconds between thumbnails.' }),
        width: Type.Integer({ description: "A thumbnail's width in pixels." }),
        height: Type.Integer(),
        columns: Type.Integer({ description: 'Thumbnails across a sheet.' }),
        rows: Type.Integer({ description: 'Thumbnails down a sheet.' }),
      },
      {
        description:
          'The seek-bar thumbnails (absent with "thumbnails": false, THUMBNAILS=false, or a video without ' +
          'a frame to take): the WebVTT track (cues from 0 to the end, each `sheet.jpg#xywh=x,y,w,h`) and ' +
          'its JPEG sheets, also listed by the MPD as an image track; the HLS master then has I-frame playlists.',
      },
    ),
  ),
  renditions: Type.Array(RenditionSchema),
  audio: Type.Boolean(),
  // Absent in records from before multi-track packages.
  audio_tracks: Type.Optional(
    Type.Array(AudioTrackOutputSchema, {
      description: 'Every audio track packaged; exactly one is the default.',
    }),
  ),
  subtitles: Type.Optional(
    Type.Array(SubtitleOutputSchema, { description: 'Every text track packaged (WebVTT).' }),
  ),
  warnings: Type.Optional(
    Type.Array(OutputWarningSchema, {
      description:
        'What was left out of the package and why (`subtitles_skipped`: a picture-based subtitle stream).',
    }),
  ),
  duration: Type.Number({ description: 'Seconds of media.' }),
  files: Type.Integer(),
  bytes: Type.Integer(),
  encryption: Type.Optional(EncryptionOutputSchema),
});

/**
 * Where EARLY_MANIFEST's first package (lowest rung and audio) is, while the task goes on: the manifests'
 * final keys, which the full package's manifests replace in place.
 */
export const EarlyOutputSchema = Type.Object({
  storage: storageKind,
  bucket: Type.Optional(Type.String()),
  prefix: Type.String(),
  manifest: Type.Optional(PackageLocationSchema),
  hls_master: Type.Optional(PackageLocationSchema),
  renditions: Type.Array(RenditionSchema, { description: 'The rungs it holds (the lowest).' }),
  audio: Type.Boolean(),
  encryption: Type.Optional(EncryptionOutputSchema),
});

export const TimingsSchema = Dictionary(Type.Number(), {
  description:
    'Once completed: seconds per stage (fetch, probe, encode, package, poster, qc, publish) and total.',
});

export const CallbackStateSchema = Type.Object({
  url: Type.String({ description: "The callback URL's origin only (its path and query may hold a secret)." }),
  status: StringEnum(['pending', 'delivered', 'failed']),
  attempts: Type.Integer(),
  last_error: Type.Optional(Type.String()),
  delivered_at: Type.Optional(Type.String()),
  // Long past, the process sending it is gone and another may take the delivery up.
  next_attempt_at: Type.Optional(
    Type.String({
      description: 'While pending: when the next attempt is due (a worker takes it up if long overdue).',
    }),
  ),
});

/** The public JSON view of a task, as GET /status, GET /tasks, the events stream and callbacks show it. */
export const StatusDocumentSchema = Type.Object({
  task_id: Type.String(),
  status: StringEnum(taskStatuses),
  stage: Nullable(
    Type.String({
      description:
        'What the task is doing: starting, fetch, probe, encode, package, poster, qc, publish, done; ' +
        'retrying or requeued while queued again; failed or cancelled at the end.',
    }),
  ),
  progress: Type.Number({ minimum: 0, maximum: 100 }),
  error: Nullable(
    Type.String({
      description:
        'Why the task failed, in words a person understands; while queued for a retry, why its last attempt failed.',
    }),
  ),
  error_code: Nullable(
    Type.String({
      description:
        'input_not_found, invalid_input, not_a_video, invalid_subtitles, limit_exceeded, encode_failed, package_failed, ' +
        'qc_failed, cancelled, timeout, storage_error, storage_denied, disk_full, worker_lost or internal.',
    }),
  ),
  cancelled: Type.Boolean(),
  video_filename: Type.String(),
  options: EncodeOptionsSchema,
  metadata: Nullable(JsonObject({ description: 'The metadata given to POST /encode, unchanged.' })),
  attempts: Type.Integer(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  queue_position: Type.Optional(
    Nullable(
      Type.Integer({
        description:
          'While queued: 1 when the task is next in line. Null when not queued or when the queue backend cannot tell.',
      }),
    ),
  ),
  eta_seconds: Nullable(
    Type.Number({
      description:
        'While processing: seconds left, from the encoding speed measured so far (null until measured).',
    }),
  ),
  next_run_at: Nullable(
    Type.String({
      format: 'date-time',
      description:
        'While queued again (stage retrying, or requeued after its run was lost with its process): when the ' +
        'task is due to run again; a free worker takes it then. Null otherwise.',
    }),
  ),
  chunks: Type.Optional(
    Type.Object(
      {
        total: Type.Integer({ description: 'Chunk jobs of the task: its video chunks and its audio.' }),
        done: Type.Integer(),
      },
      {
        description:
          'Present when the task is split (chunk_seconds, CHUNK_MIN_INPUT_SECONDS): its chunk jobs, each run by ' +
          'any worker, and how many are done; progress, stage and eta_seconds aggregate them meanwhile.',
      },
    ),
  ),
  playable: Type.Boolean({
    description:
      'Whether the manifest at the output location plays: once completed, and while processing when ' +
      'EARLY_MANIFEST published the lowest rung and the audio first (the full ladder then replaces it in place).',
  }),
  early_output: Nullable(EarlyOutputSchema, {
    description:
      'While processing, once EARLY_MANIFEST published the lowest rung and the audio: where their manifests ' +
      'are. These are the final keys: the full package replaces them in place when the task completes.',
  }),
  output: Nullable(TaskOutputSchema, { description: 'Where the package is, once completed.' }),
  timings: Nullable(TimingsSchema),
  encode_speed: Nullable(
    Type.Number({
      description: 'Once completed: seconds of media encoded per second (× realtime), whole ladder at once.',
    }),
  ),
  qc: Nullable(QcReportSchema, {
    description:
      'The checks the package passed before it was published (null until completed, or with QC_MODE=off). ' +
      'A failed check fails the task with error_code qc_failed unless QC_MODE=warn.',
  }),
  callback: Nullable(CallbackStateSchema),
});

export type StatusDocument = Static<typeof StatusDocumentSchema>;
export type PackageLocation = Static<typeof PackageLocationSchema>;
export type ThumbnailsOutput = NonNullable<Static<typeof TaskOutputSchema>['thumbnails']>;
export type RenditionOutput = Static<typeof RenditionSchema>;
export type PackageOutput = Static<typeof TaskOutputSchema>;
export type EarlyOutput = Static<typeof EarlyOutputSchema>;
export type CallbackState = Static<typeof CallbackStateSchema>;
export type Timings = Static<typeof TimingsSchema>;
export type AudioTrackOutput = Static<typeof AudioTrackOutputSchema>;
export type SubtitleOutput = Static<typeof SubtitleOutputSchema>;
export type OutputWarning = Static<typeof OutputWarningSchema>;
