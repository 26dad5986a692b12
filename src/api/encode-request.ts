import type { Services } from '../app/services.js';
import { assertCallbackUrl, CallbackTargetError } from '../callbacks/address-guard.js';
import { PROFILE_NAME_PATTERN } from '../config/profiles.js';
import { TaskFailure } from '../domain/failures.js';
import type { TaskRequest } from '../domain/task.js';
import { assertSafeKey, UnsafeKeyError } from '../storage/keys.js';
import { packagePrefixFor, resolveEncodeSettings } from '../jobs/encode-settings.js';
import { isLanguageTag } from '../pipeline/languages.js';
import { ApiError } from './errors.js';

/** Largest `metadata` accepted, as JSON bytes: it is stored with the task and sent with every callback. */
export const METADATA_MAX_BYTES = 4096;

const rungSchema = {
  type: 'object',
  required: ['height', 'bitrate'],
  additionalProperties: false,
  properties: {
    height: {
      type: 'integer',
      minimum: 16,
      maximum: 4320,
      description: 'Short side of the picture in pixels (720 is 720p, whatever the orientation).',
    },
    bitrate: { type: 'integer', minimum: 50_000, maximum: 100_000_000, description: 'Target video bit/s.' },
  },
} as const;

/** The body of POST /encode and POST /plan. */
export const encodeRequestSchema = {
  type: 'object',
  required: ['video_filename'],
  additionalProperties: false,
  properties: {
    video_filename: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      description: 'Key of the input in the input storage, e.g. "example.mp4" or "uploads/2024/clip.mov".',
    },
    callback_url: {
      type: 'string',
      minLength: 1,
      maxLength: 2048,
      description:
        'Receives a POST with the final status document (overrides CALLBACK_URL). Private and loopback ' +
        'addresses are refused unless CALLBACK_ALLOW_PRIVATE=true.',
    },
    profile: {
      type: 'string',
      pattern: PROFILE_NAME_PATTERN,
      description:
        'A configured profile: "default" (LADDER and the service settings), "seed" (the settings of the project ' +
        'this service replaces: 360p at 600 kbit/s and 720p at 3000 kbit/s, near-constant bitrate, x264 ' +
        'ultrafast, 3 s segments), "high" (the configured ladder plus 1080p at 5000 kbit/s), or one from ' +
        'PROFILES_FILE. A `ladder` list, `segment_duration` or `formats` given beside it override its own.',
    },
    ladder: {
      description:
        'The renditions to make: a list of rungs, or the name of a configured profile (built in: ' +
        '"default", the configured LADDER; "seed", 360p at 600 kbit/s and 720p at 3000 kbit/s, ' +
        'near-constant bitrate, x264 ultrafast, 3 s segments; "high", the configured ladder plus 1080p at ' +
        '5000 kbit/s; more with PROFILES_FILE). Rungs larger than the source are skipped (never upscaled).',
      oneOf: [
        { type: 'string', pattern: PROFILE_NAME_PATTERN },
        { type: 'array', minItems: 1, maxItems: 8, items: rungSchema },
      ],
    },
    segment_duration: {
      type: 'number',
      minimum: 1,
      maximum: 30,
      description:
        'Seconds per segment, also the keyframe interval (default SEGMENT_DURATION, or the profile’s).',
    },
    formats: {
      type: 'array',
      minItems: 1,
      maxItems: 2,
      uniqueItems: true,
      items: { type: 'string', enum: ['dash', 'hls'] },
      description: 'Manifests to write: "dash" (manifest.mpd), "hls" (master.m3u8); default OUTPUT_FORMATS.',
    },
    output_prefix: {
      type: 'string',
      minLength: 1,
      maxLength: 512,
      description:
        'Where the package goes in the output storage, below OUTPUT_PREFIX, instead of the input’s name ' +
        'without extension: a relative key such as "customers/42/clip-7" (no leading /, no . or .. segments).',
    },
    audio_tracks: {
      type: 'string',
      enum: ['all', 'first'],
      description:
        'Which audio tracks of the source to package: "all" (default), each its own DASH AdaptationSet and HLS ' +
        'audio rendition, or "first": the default track alone (see default_audio_language).',
    },
    default_audio_language: {
      type: 'string',
      minLength: 2,
      maxLength: 35,
      pattern: '^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$',
      description:
        'Language of the audio track players start with (BCP 47 "fr", "pt-BR" or ISO 639-2 "fra"): the first ' +
        'track in it that is not audio description. Without it, or with no track in it, the track the source ' +
        'marks default, else the first. Exactly one track is the default (HLS DEFAULT=YES, DASH role main).',
    },
    subtitles: {
      type: 'array',
      maxItems: 20,
      description:
        'Subtitle files (SRT or WebVTT, UTF-8 or Latin-1; ASS styling dropped) in the input storage, packaged ' +
        'as text tracks beside the input’s own (DASH wvtt, HLS WebVTT), cues past the video’s end clipped. ' +
        'A missing file fails the task with input_not_found (404 from /plan), one that is not subtitles with ' +
        'invalid_subtitles.',
      items: {
        type: 'object',
        required: ['filename', 'language'],
        additionalProperties: false,
        properties: {
          filename: {
            type: 'string',
            minLength: 1,
            maxLength: 1024,
            description: 'Key in the input storage, under the rules of video_filename.',
          },
          language: {
            type: 'string',
            minLength: 2,
            maxLength: 35,
            pattern: '^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$',
            description: 'BCP 47 ("fr", "pt-BR") or ISO 639-2 ("fra").',
          },
          label: { type: 'string', minLength: 1, maxLength: 64, description: 'The name players show.' },
          forced: {
            type: 'boolean',
            description:
              'Forced narrative: shown when subtitles are off (HLS FORCED=YES, DASH forced-subtitle).',
          },
        },
      },
    },
    metadata: {
      type: 'object',
      additionalProperties: true,
      maxProperties: 64,
      description: `Any JSON object (at most ${METADATA_MAX_BYTES} bytes as JSON), stored with the task and echoed unchanged in the status document and the callback.`,
    },
  },
} as const;

export type EncodeRequestBody = TaskRequest;

/**
 * Checks what the schema cannot (safe keys, callback target, known profile, metadata size) and returns the
 * request to queue, with its fields in a fixed order (the Idempotency-Key comparison hashes it).
 */
export function toTaskRequest(body: EncodeRequestBody, services: Services): TaskRequest {
  const badRequest = (err: unknown): never => {
    if (err instanceof UnsafeKeyError || err instanceof CallbackTargetError || err instanceof TaskFailure) {
      throw new ApiError('bad_request', err.message);
    }
    throw err;
  };
  try {
    assertSafeKey(body.video_filename);
  } catch (err) {
    badRequest(err);
  }
  if (body.callback_url !== undefined) {
    try {
      assertCallbackUrl(body.callback_url, { allowPrivate: services.config.callback.allowPrivate });
    } catch (err) {
      badRequest(err);
    }
  }
  if (body.metadata !== undefined && Buffer.byteLength(JSON.stringify(body.metadata)) > METADATA_MAX_BYTES) {
    throw new ApiError('bad_request', `metadata must be at most ${METADATA_MAX_BYTES} bytes as JSON`);
  }
  const request: TaskRequest = { video_filename: body.video_filename };
  if (body.callback_url !== undefined) request.callback_url = body.callback_url;
  if (body.profile !== undefined) request.profile = body.profile;
  if (body.ladder !== undefined) request.ladder = body.ladder;
  if (body.segment_duration !== undefined) request.segment_duration = body.segment_duration;
  if (body.formats !== undefined) request.formats = body.formats;
  if (body.output_prefix !== undefined) request.output_prefix = body.output_prefix;
  if (body.audio_tracks !== undefined) request.audio_tracks = body.audio_tracks;
  if (body.default_audio_language !== undefined) {
    if (!isLanguageTag(body.default_audio_language)) {
      throw new ApiError(
        'bad_request',
        `default_audio_language "${body.default_audio_language}" is not a language tag`,
      );
    }
    request.default_audio_language = body.default_audio_language;
  }
  if (body.subtitles !== undefined) {
    request.subtitles = body.subtitles.map((s) => {
      try {
        assertSafeKey(s.filename, 'a subtitles filename');
      } catch (err) {
        badRequest(err);
      }
      if (!isLanguageTag(s.language)) {
        throw new ApiError('bad_request', `subtitles language "${s.language}" is not a language tag`);
      }
      return {
        filename: s.filename,
        language: s.language,
        ...(s.label !== undefined ? { label: s.label } : {}),
        ...(s.forced !== undefined ? { forced: s.forced } : {}),
      };
    });
  }
  if (body.metadata !== undefined) request.metadata = body.metadata;
  try {
    resolveEncodeSettings(services.config, request);
    packagePrefixFor(services.config, request);
  } catch (err) {
    badRequest(err);
  }
  return request;
}
