/** The answer of POST /plan and POST /encode?dry_run=true (see `describePlan`). */
export const planDocumentSchema = {
  type: 'object',
  required: ['dry_run', 'video_filename', 'output_prefix', 'input', 'plan', 'estimate', 'warnings'],
  properties: {
    dry_run: { type: 'boolean', enum: [true] },
    video_filename: { type: 'string' },
    output_prefix: { type: 'string', description: 'Where the package would be published.' },
    input: {
      type: 'object',
      description: 'The input as ffprobe reads it.',
      properties: {
        bytes: { type: 'integer' },
        container: { type: 'string' },
        duration: { type: 'number', description: 'Seconds.' },
        video: {
          type: 'object',
          properties: {
            codec: { type: 'string' },
            width: { type: 'integer', description: 'Displayed width (after rotation, square pixels).' },
            height: { type: 'integer', description: 'Displayed height (after rotation, square pixels).' },
            coded_width: { type: 'integer' },
            coded_height: { type: 'integer' },
            rotation: { type: 'integer', description: 'Degrees clockwise the stored picture is turned.' },
            sample_aspect_ratio: { type: 'number' },
            frame_rate: { type: 'number', description: 'Average frames per second.' },
            variable_frame_rate: { type: 'boolean' },
            interlaced: { type: 'boolean' },
            pixel_format: { type: 'string' },
          },
        },
        audio: {
          type: ['object', 'null'],
          properties: {
            codec: { type: 'string' },
            channels: { type: 'integer' },
            sample_rate: { type: 'integer' },
            language: {
              type: ['string', 'null'],
              description: 'ISO 639 language code the stream is tagged with (null when untagged or `und`).',
            },
          },
        },
      },
    },
    plan: {
      type: 'object',
      description: 'What would be encoded, after the no-upscale and frame-rate rules.',
      properties: {
        renditions: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              width: { type: 'integer' },
              height: { type: 'integer' },
              bitrate: { type: 'integer', description: 'Target bit/s.' },
              maxrate: { type: 'integer', description: 'Peak bit/s.' },
              bufsize: { type: 'integer', description: 'Rate-control buffer, bits.' },
            },
          },
        },
        audio: {
          type: ['object', 'null'],
          properties: {
            bitrate: { type: 'integer' },
            channels: { type: 'integer' },
            sample_rate: { type: 'integer' },
            copy: {
              type: 'boolean',
              description:
                "The source's AAC is packaged as it is (AAC-LC, mono or stereo, 44.1/48 kHz, at most 1.5 × AUDIO_BITRATE; AUDIO_COPY).",
            },
            language: {
              type: ['string', 'null'],
              description:
                "The source's language, kept on the packaged audio, which the manifests make the default rendition (HLS DEFAULT=YES, DASH role main).",
            },
          },
        },
        audio_tracks: {
          type: 'array',
          description: 'Every audio track to package (`audio` above is the default one).',
          items: {
            type: 'object',
            properties: {
              name: { type: 'string', description: 'Its directory in the package.' },
              source_index: { type: 'integer' },
              language: { type: 'string', description: 'BCP 47, `und` when the source does not say.' },
              label: { type: 'string' },
              default: { type: 'boolean' },
              audio_description: { type: 'boolean' },
              channels: { type: 'integer' },
              sample_rate: { type: 'integer' },
              bitrate: { type: 'integer' },
              copy: { type: 'boolean' },
            },
          },
        },
        subtitles: {
          type: 'array',
          description: "Text tracks to package: the input's text streams, then the request's files.",
          items: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              language: { type: 'string' },
              label: { type: 'string' },
              forced: { type: 'boolean' },
              source: { type: 'string', description: 'The filename, or `stream N` of the input.' },
            },
          },
        },
        frame_rate: { type: 'number', description: 'Output frames per second.' },
        frame_rate_limit: {
          type: ['number', 'null'],
          description: 'Set when the source is faster than MAX_FRAME_RATE.',
        },
        gop_frames: {
          type: 'integer',
          description: 'Keyframe interval in frames (one keyframe per segment).',
        },
        segment_duration: { type: 'number', description: 'Seconds.' },
        segments: { type: 'integer', description: 'Segments per stream.' },
        preset: { type: 'string', description: 'x264 preset.' },
        formats: { type: 'array', items: { type: 'string', enum: ['dash', 'hls'] } },
        source_sized_rung: {
          type: 'boolean',
          description:
            'True when every rung was larger than the source and one rendition is made at its size.',
        },
      },
    },
    estimate: {
      type: 'object',
      properties: {
        output_bytes: { type: 'integer', description: 'Package size from the target bitrates.' },
        work_seconds: { type: 'number', description: 'Processing time once a worker takes the task.' },
        basis: {
          type: 'string',
          enum: ['measured', 'default'],
          description:
            'measured: from the encoding speed of earlier tasks in this process; default: a rough built-in figure.',
        },
      },
    },
    warnings: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          code: {
            type: 'string',
            enum: [
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
              'subtitles_skipped',
            ],
          },
          message: { type: 'string' },
        },
      },
    },
  },
} as const;
