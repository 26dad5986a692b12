import { Type, type Static } from '@sinclair/typebox';
import { EncryptionRequestSchema, PublicEncryptionOptionsSchema } from './encryption.js';
import { PROFILE_NAME_PATTERN } from './names.js';
import { JsonObject, StringEnum, videoCodecNames } from './shared.js';

export { PROFILE_NAME_PATTERN };

/** Largest `metadata` accepted, as JSON bytes: it is stored with the task and sent with every callback. */
export const METADATA_MAX_BYTES = 4096;

export const outputFormats = ['dash', 'hls'] as const;

export const RungSchema = Type.Object(
  {
    height: Type.Integer({
      minimum: 16,
      maximum: 4320,
      description: 'Short side of the picture in pixels (720 is 720p, whatever the orientation).',
    }),
    bitrate: Type.Integer({ minimum: 50_000, maximum: 100_000_000, description: 'Target video bit/s.' }),
  },
  { additionalProperties: false },
);

/** BCP 47 (`fr`, `pt-BR`) or ISO 639-2 (`fra`); the request check also asks Intl whether it is a language. */
export const LANGUAGE_TAG_PATTERN = '^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$';

/** At most this many subtitle files per request: each is a stream of the packager. */
export const MAX_SUBTITLE_FILES = 20;

/** A subtitle file beside the input, as the request names it. */
export const SubtitleRequestSchema = Type.Object(
  {
    filename: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'Key in the input storage, under the rules of video_filename.',
    }),
    language: Type.String({
      minLength: 2,
      maxLength: 35,
      pattern: LANGUAGE_TAG_PATTERN,
      description: 'BCP 47 ("fr", "pt-BR") or ISO 639-2 ("fra").',
    }),
    label: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'The name players show.' })),
    forced: Type.Optional(
      Type.Boolean({
        description: 'Forced narrative: shown when subtitles are off (HLS FORCED=YES, DASH forced-subtitle).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type SubtitleRequest = Static<typeof SubtitleRequestSchema>;

/**
 * A conversion's options, all optional. NEW REQUEST OPTIONS GO HERE, one property each: POST /encode and /plan,
 * the stored task, the status document's `options` and OpenAPI follow, with no other list to update.
 */
export const encodeOptionProperties = {
  profile: Type.Optional(
    Type.String({
      pattern: PROFILE_NAME_PATTERN,
      description:
        'A configured profile: "default" (LADDER and the service settings), "seed" (the settings of the project ' +
        'this service replaces: 360p at 600 kbit/s and 720p at 3000 kbit/s, near-constant bitrate, x264 ' +
        'ultrafast, 3 s segments), "high" (the configured ladder plus 1080p at 5000 kbit/s), or one from ' +
        'PROFILES_FILE. A `ladder` list, `segment_duration` or `formats` given beside it override its own.',
    }),
  ),
  ladder: Type.Optional(
    // oneOf, not TypeBox's anyOf: a value is either a profile name or a list, and says so when it is neither.
    Type.Unsafe<string | Static<typeof RungSchema>[]>({
      description:
        'The renditions to make: a list of rungs, or the name of a configured profile (built in: ' +
        '"default", the configured LADDER; "seed", 360p at 600 kbit/s and 720p at 3000 kbit/s, ' +
        'near-constant bitrate, x264 ultrafast, 3 s segments; "high", the configured ladder plus 1080p at ' +
        '5000 kbit/s; more with PROFILES_FILE). Rungs larger than the source are skipped (never upscaled).',
      oneOf: [
        Type.String({ pattern: PROFILE_NAME_PATTERN }),
        Type.Array(RungSchema, { minItems: 1, maxItems: 8 }),
      ],
    }),
  ),
  segment_duration: Type.Optional(
    Type.Number({
      minimum: 1,
      maximum: 30,
      description:
        'Seconds per segment, also the keyframe interval (default SEGMENT_DURATION, or the profile’s).',
    }),
  ),
  thumbnails: Type.Optional(
    Type.Boolean({
      description:
        'Seek-bar thumbnails (JPEG sheets, thumbnails.vtt, a DASH image track) and HLS I-frame playlists; ' +
        'default THUMBNAILS (true). false leaves them all out.',
    }),
  ),
  formats: Type.Optional(
    Type.Array(StringEnum(outputFormats), {
      minItems: 1,
      maxItems: 2,
      uniqueItems: true,
      description: 'Manifests to write: "dash" (manifest.mpd), "hls" (master.m3u8); default OUTPUT_FORMATS.',
    }),
  ),
  video_codecs: Type.Optional(
    Type.Array(StringEnum(videoCodecNames), {
      minItems: 1,
      maxItems: videoCodecNames.length,
      uniqueItems: true,
      description:
        'Video codecs, each with the whole ladder at its own bitrates, from one decode: "h264", "av1" ' +
        '(SVT-AV1), "vp9", "hevc" (tagged hvc1); default VIDEO_CODECS (or the profile’s). DASH has one ' +
        'AdaptationSet per codec, HLS a variant per rung and codec; players pick the best they decode. A ' +
        'codec this FFmpeg cannot encode is refused with 400.',
    }),
  ),
  chunk_seconds: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 3600,
      description:
        'Split and stitch: encode the video in chunks of about this many seconds (rounded to whole segments), ' +
        'each a job any worker takes, when the input is longer than one chunk; 0 never splits. Default: ' +
        'chunks of CHUNK_SECONDS for inputs longer than CHUNK_MIN_INPUT_SECONDS.',
    }),
  ),
  output_prefix: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 512,
      description:
        'Where the package goes in the output storage, below OUTPUT_PREFIX, instead of the input’s name ' +
        'without extension: a relative key such as "customers/42/clip-7" (no leading /, no . or .. segments).',
    }),
  ),
  audio_tracks: Type.Optional(
    StringEnum(['all', 'first'], {
      description:
        'Which audio tracks of the source to package: "all" (default), each its own DASH AdaptationSet and HLS ' +
        'audio rendition, or "first": the default track alone (see default_audio_language).',
    }),
  ),
  default_audio_language: Type.Optional(
    Type.String({
      minLength: 2,
      maxLength: 35,
      pattern: LANGUAGE_TAG_PATTERN,
      description:
        'Language of the audio track players start with (BCP 47 "fr", "pt-BR" or ISO 639-2 "fra"): the first ' +
        'track in it that is not audio description. Without it, or with no track in it, the track the source ' +
        'marks default, else the first. Exactly one track is the default (HLS DEFAULT=YES, DASH role main).',
    }),
  ),
  subtitles: Type.Optional(
    Type.Array(SubtitleRequestSchema, {
      maxItems: MAX_SUBTITLE_FILES,
      description:
        'Subtitle files (SRT or WebVTT; UTF-8, UTF-16 with its byte-order mark, or Latin-1; ASS styling dropped) in the input storage, packaged ' +
        'as text tracks beside the input’s own (DASH wvtt, HLS WebVTT), cues past the video’s end clipped. ' +
        'A missing file fails the task with input_not_found (404 from /plan), one that is not subtitles with ' +
        'invalid_subtitles.',
    }),
  ),
};

/**
 * The options as the status document echoes them; `encryption` (not among the properties above, which are
 * echoed as given) is shown without its keys.
 */
export const EncodeOptionsSchema = Type.Object(
  { ...encodeOptionProperties, encryption: Type.Optional(PublicEncryptionOptionsSchema) },
  {
    description: `The per-request options given to POST /encode (${Object.keys(encodeOptionProperties).join(', ')}, encryption without its keys and IV).`,
  },
);
export type EncodeOptions = Static<typeof EncodeOptionsSchema>;
export const encodeOptionNames = Object.keys(encodeOptionProperties) as (keyof EncodeOptions)[];

/** The body of POST /encode and POST /plan; unknown fields are refused. */
export const EncodeRequestSchema = Type.Object(
  {
    video_filename: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'Key of the input in the input storage, e.g. "example.mp4" or "uploads/2024/clip.mov".',
    }),
    callback_url: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 2048,
        description:
          'Receives a POST with the final status document (overrides CALLBACK_URL). Private and loopback ' +
          'addresses are refused unless CALLBACK_ALLOW_PRIVATE=true.',
      }),
    ),
    ...encodeOptionProperties,
    metadata: Type.Optional(
      JsonObject({
        maxProperties: 64,
        description: `Any JSON object (at most ${METADATA_MAX_BYTES} bytes as JSON), stored with the task and echoed unchanged in the status document and the callback.`,
      }),
    ),
    encryption: Type.Optional(EncryptionRequestSchema),
  },
  { additionalProperties: false },
);

/** What a client asked for: the body of POST /encode after validation, as the task keeps it. */
export type TaskRequest = Static<typeof EncodeRequestSchema>;

/** Every field of a request, in the schema's order (the order a stored request keeps). */
export const taskRequestFields = Object.keys(EncodeRequestSchema.properties) as (keyof TaskRequest)[];
