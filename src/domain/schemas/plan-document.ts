import { Type, type Static } from '@sinclair/typebox';
import { outputFormats } from './encode-request.js';
import { Nullable, StringEnum, TrueLiteral, videoCodecNames } from './shared.js';

export const planWarningCodes = [
  'variable_frame_rate',
  'odd_dimensions',
  'rotation',
  'interlaced',
  'hdr',
  'no_audio',
  'non_square_pixels',
  'frame_rate_reduced',
  'rungs_skipped',
  'source_sized_rung',
  'audio_starts_late',
  'video_ends_early',
  'no_h264',
  'codec_left_out',
  'subtitles_skipped',
] as const;

export const PlanWarningSchema = Type.Object({ code: StringEnum(planWarningCodes), message: Type.String() });

const InputSchema = Type.Object(
  {
    bytes: Type.Integer(),
    container: Type.String(),
    duration: Type.Number({ description: 'Seconds.' }),
    video: Type.Object({
      codec: Type.String(),
      width: Type.Integer({ description: 'Displayed width (after rotation, square pixels).' }),
      height: Type.Integer({ description: 'Displayed height (after rotation, square pixels).' }),
      coded_width: Type.Integer(),
      coded_height: Type.Integer(),
      rotation: Type.Integer({ description: 'Degrees clockwise the stored picture is turned.' }),
      sample_aspect_ratio: Type.Number(),
      frame_rate: Type.Number({ description: 'Average frames per second.' }),
      variable_frame_rate: Type.Boolean(),
      interlaced: Type.Boolean(),
      pixel_format: Type.String(),
    }),
    audio: Nullable(
      Type.Object({
        codec: Type.String(),
        channels: Type.Integer(),
        sample_rate: Type.Integer(),
        language: Nullable(
          Type.String({
            description: 'ISO 639 language code the stream is tagged with (null when untagged or `und`).',
          }),
        ),
      }),
    ),
  },
  { description: 'The input as ffprobe reads it.' },
);

// New per-request settings that change the encode (codecs, tracks) are shown here, beside `formats`.
const EncodePlanSchema = Type.Object(
  {
    renditions: Type.Array(
      Type.Object({
        name: Type.String(),
        codec: StringEnum(videoCodecNames),
        width: Type.Integer(),
        height: Type.Integer(),
        bitrate: Type.Integer({
          description: "Target bit/s: the rung's, times the codec's factor (av1 0.6, vp9 0.75, hevc 0.7).",
        }),
        maxrate: Type.Integer({ description: 'Peak bit/s.' }),
        bufsize: Type.Integer({ description: 'Rate-control buffer, bits.' }),
      }),
    ),
    audio: Nullable(
      Type.Object({
        bitrate: Type.Integer(),
        channels: Type.Integer(),
        sample_rate: Type.Integer(),
        copy: Type.Boolean({
          description:
            "The source's AAC is packaged as it is (AAC-LC, mono or stereo, 44.1/48 kHz, at most 1.5 × AUDIO_BITRATE; AUDIO_COPY).",
        }),
        language: Nullable(
          Type.String({
            description:
              "The source's language, kept on the packaged audio, which the manifests make the default rendition (HLS DEFAULT=YES, DASH role main).",
          }),
        ),
      }),
    ),
    audio_tracks: Type.Array(
      Type.Object({
        name: Type.String({ description: 'Its directory in the package.' }),
        source_index: Type.Integer({ description: "The stream's index in the input." }),
        language: Type.String({ description: 'BCP 47, `und` when the source does not say.' }),
        label: Type.String(),
        default: Type.Boolean(),
        audio_description: Type.Boolean(),
        channels: Type.Integer(),
        sample_rate: Type.Integer(),
        bitrate: Type.Integer(),
        copy: Type.Boolean(),
      }),
      { description: 'Every audio track to package (`audio` above is the default one).' },
    ),
    subtitles: Type.Array(
      Type.Object({
        name: Type.String({ description: 'Its directory in the package.' }),
        language: Type.String(),
        label: Type.String(),
        forced: Type.Boolean(),
        source: Type.String({ description: 'The filename, or `stream N` of the input.' }),
      }),
      { description: "Text tracks to package: the input's text streams, then the request's files." },
    ),
    video_codecs: Type.Array(StringEnum(videoCodecNames), {
      description: 'The codecs encoded, each with the whole ladder.',
    }),
    frame_rate: Type.Number({ description: 'Output frames per second.' }),
    frame_rate_limit: Nullable(
      Type.Number({ description: 'Set when the source is faster than MAX_FRAME_RATE.' }),
    ),
    gop_frames: Type.Integer({ description: 'Keyframe interval in frames (one keyframe per segment).' }),
    segment_duration: Type.Number({ description: 'Seconds.' }),
    segments: Type.Integer({ description: 'Segments per stream.' }),
    preset: Type.String({ description: 'x264 preset.' }),
    formats: Type.Array(StringEnum(outputFormats)),
    source_sized_rung: Type.Boolean({
      description: 'True when every rung was larger than the source and one rendition is made at its size.',
    }),
  },
  { description: 'What would be encoded, after the no-upscale and frame-rate rules.' },
);

/** The answer of POST /plan and POST /encode?dry_run=true (see `describePlan`). */
export const PlanDocumentSchema = Type.Object({
  dry_run: TrueLiteral(),
  video_filename: Type.String(),
  output_prefix: Type.String({ description: 'Where the package would be published.' }),
  input: InputSchema,
  plan: EncodePlanSchema,
  estimate: Type.Object({
    output_bytes: Type.Integer({ description: 'Package size from the target bitrates.' }),
    work_seconds: Type.Number({
      description:
        'Processing time once a worker takes the task, every codec’s encoders counted (AV1, VP9 and HEVC cost more CPU per pixel than H.264).',
    }),
    basis: StringEnum(['measured', 'default'], {
      description:
        'measured: from the encoding speed of earlier tasks in this process; default: a rough built-in figure.',
    }),
  }),
  split: Type.Object(
    {
      chunks: Type.Integer({ description: 'Chunk jobs for the video (0: encoded in one run).' }),
      chunk_seconds: Type.Number({
        description: 'Seconds per chunk asked for (CHUNK_SECONDS or chunk_seconds; 0: never split).',
      }),
      spans: Type.Array(
        Type.Object({
          index: Type.Integer(),
          start: Type.Number({ description: 'Seconds.' }),
          end: Type.Number({ description: 'Seconds; the last chunk reads to the end of the input.' }),
        }),
      ),
      reason: Type.String({ description: 'Why the input is, or is not, split.' }),
    },
    {
      description:
        'Split and stitch: whether the video would be encoded in chunks, each a job any worker takes, then ' +
        'joined (inputs longer than CHUNK_MIN_INPUT_SECONDS, or than chunk_seconds when given).',
    },
  ),
  warnings: Type.Array(PlanWarningSchema),
});

export type PlanDocument = Static<typeof PlanDocumentSchema>;
export type PlanWarning = Static<typeof PlanWarningSchema>;
