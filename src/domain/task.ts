import { createHash } from 'node:crypto';
import type { FailureCode } from './failures.js';
import type { QcReport } from './qc-report.js';

export const taskStatuses = ['queued', 'processing', 'completed', 'failed'] as const;
export type TaskStatus = (typeof taskStatuses)[number];

/** What a client asked for: the body of POST /encode after validation. */
export interface TaskRequest {
  video_filename: string;
  /** `all` (default): every audio track of the source; `first`: the default track alone. */
  audio_tracks?: 'all' | 'first';
  /** The language of the default audio track (BCP 47 or ISO 639-2), before the source's own default. */
  default_audio_language?: string;
  /** Subtitle files (SRT, WebVTT) in the input storage to package beside the input's own text tracks. */
  subtitles?: SubtitleRequest[];
  callback_url?: string;
  /** The name of a configured profile (`default`, `seed`, `high`, PROFILES_FILE's). */
  profile?: string;
  /** Rungs (`height` is the short side) or the name of a configured profile. */
  ladder?: string | { height: number; bitrate: number }[];
  /** Seconds. */
  segment_duration?: number;
  formats?: ('dash' | 'hls')[];
  /** Where the package goes, below OUTPUT_PREFIX (instead of the input's name). */
  output_prefix?: string;
  /** Opaque to the service: echoed in the status document and the callback. */
  metadata?: Record<string, unknown>;
}

/** One audio track of a package, as the status document lists it. */
export interface AudioTrackOutput {
  /** BCP 47 (`fr`), `und` when the source did not say. */
  language: string;
  label: string;
  channels: number;
  /** The one track players start with (HLS DEFAULT=YES, DASH role main). */
  default: boolean;
  /** Audio description (for the visually impaired). */
  audio_description: boolean;
}

export interface SubtitleOutput {
  language: string;
  label: string;
  forced: boolean;
  /** The request's filename, or `stream N` for the input's own. */
  source: string;
}

/** A subtitle file beside the input, as the request names it. */
export interface SubtitleRequest {
  /** A key in the input storage, under the rules of video_filename. */
  filename: string;
  /** BCP 47 or ISO 639-2. */
  language: string;
  label?: string;
  forced?: boolean;
}

export interface RenditionOutput {
  name: string;
  width: number;
  height: number;
  /** Target bitrate, bits per second. */
  bitrate: number;
}

/**
 * Where EARLY_MANIFEST's first package (lowest rung and audio) is, while the task goes on: the manifests'
 * final keys, which the full package's manifests replace in place.
 */
export type EarlyOutput = Pick<
  TaskOutput,
  'storage' | 'bucket' | 'prefix' | 'manifest' | 'hls_master' | 'renditions' | 'audio'
>;

/** Where the finished package is. Keys are relative to the output storage. */
export interface TaskOutput {
  storage: 'local' | 's3';
  bucket?: string;
  prefix: string;
  /** Where this task's segments and media playlists are, below `prefix` (absent in records from before). */
  media_prefix?: string;
  manifest?: { key: string; url?: string };
  hls_master?: { key: string; url?: string };
  poster: { key: string; url?: string };
  renditions: RenditionOutput[];
  audio: boolean;
  /** Every audio track packaged (absent in records from before multi-track packages). */
  audio_tracks?: AudioTrackOutput[];
  /** Every text track packaged. */
  subtitles?: SubtitleOutput[];
  /** What was left out of the package and why (a picture-based subtitle stream). */
  warnings?: { code: string; message: string }[];
  /** Seconds of media. */
  duration: number;
  files: number;
  bytes: number;
  /** Seconds spent per stage (fetch, probe, encode, package, poster, qc, publish) and in total. */
  timings?: Record<string, number>;
  /** Media seconds encoded per second of encoding. */
  encode_speed?: number;
  /** The checks the package passed before it was published (absent with QC_MODE=off). */
  qc?: QcReport;
}

export interface CallbackState {
  url: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_error?: string;
  delivered_at?: string;
  /**
   * While pending: when the next attempt is due (between attempts) or must have ended (during one). Long
   * past, the process sending it is gone and another may take the delivery up.
   */
  next_attempt_at?: string;
}

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
  error?: { code: FailureCode; message: string };
  output?: TaskOutput;
  cancelled?: boolean;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  callback?: CallbackState;
}

export function isFinal(status: TaskStatus): boolean {
  return status === 'completed' || status === 'failed';
}

/**
 * What requests under one idempotency key are compared by: the request as stored, with `metadata`'s keys in
 * a fixed order (a client's JSON library may write `{"a":1,"b":2}` one time and `{"b":2,"a":1}` the next).
 */
export function requestHash(request: TaskRequest): string {
  const canonical = request.metadata ? { ...request, metadata: sortedKeys(request.metadata) } : request;
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
