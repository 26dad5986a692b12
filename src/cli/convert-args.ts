import { parseArgs } from 'node:util';
import { isLanguageTag } from '../pipeline/languages.js';

export interface ConvertArgs {
  input: string;
  output: string;
  quiet: boolean;
  /** Replace what the output directory holds (refused otherwise, when it is not empty). */
  force: boolean;
  /** Where to write the JSON report (the status document's output, timings and QC). */
  report?: string;
  /** Encrypt with the keys of the file given (ENCRYPTION_KEYS_FILE in `env`). */
  encrypt: boolean;
  /** `all` (default) or `first`: which audio tracks of the input to package. */
  audio?: 'all' | 'first';
  /** Subtitle files to package, each with its language (`--subtitles fr=movie.fr.srt,en=movie.en.vtt`). */
  subtitles: { language: string; file: string }[];
  /** The environment with the command line's encoder options applied, for loadConfig. */
  env: NodeJS.ProcessEnv;
}

/** The command's synopsis and options, for `--help` and a command line it cannot take. */
export const convertUsage = `  dash-video-converter convert INPUT -o DIR  Convert one local file into DIR, with a progress bar
      [--ladder 360:550k,720:2800k]  rungs as HEIGHT:BITRATE (LADDER)
      [--formats dash,hls]           manifests to write (OUTPUT_FORMATS)
      [--segment-duration 4]         seconds per segment (SEGMENT_DURATION)
      [--preset superfast]           x264 preset (X264_PRESET)
      [--no-thumbnails]              no seek-bar thumbnails nor HLS I-frame playlists (THUMBNAILS=false)
      [--codecs h264,av1]            video codecs, each the whole ladder: h264, av1, vp9, hevc (VIDEO_CODECS)
      [--audio all|first]            every audio track (default), or the default one alone
      [--subtitles fr=a.srt,en=b.vtt] subtitle files (SRT, WebVTT) to package, with their language
      [--force]                      replace what DIR holds (a DIR with files is refused otherwise)
      [--report FILE]                write the JSON report (renditions, bytes, timings, qc) to FILE
      [--encryption KEYS.json]       encrypt with the keys in this file (chmod 600; ENCRYPTION_KEYS_FILE)
      [-q, --quiet]                  no progress bar`;

/** `convert INPUT -o DIR [options]`; undefined when the input or the output directory is missing. */
export function parseConvertArgs(args: string[]): ConvertArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      ladder: { type: 'string' },
      formats: { type: 'string' },
      'segment-duration': { type: 'string' },
      preset: { type: 'string' },
      'no-thumbnails': { type: 'boolean' },
      codecs: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      force: { type: 'boolean' },
      report: { type: 'string' },
      encryption: { type: 'string' },
      audio: { type: 'string' },
      subtitles: { type: 'string' },
    },
  });
  const input = positionals[0];
  if (!input || !values.output || positionals.length > 1) return undefined;
  if (values.audio !== undefined && values.audio !== 'all' && values.audio !== 'first') return undefined;
  const subtitles = (values.subtitles ?? '')
    .split(',')
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf('=');
      return { language: pair.slice(0, at), file: pair.slice(at + 1) };
    });
  if (subtitles.some((s) => !isLanguageTag(s.language) || !s.file)) return undefined;
  const env = { ...process.env };
  if (values.ladder) env.LADDER = values.ladder;
  if (values.formats) env.OUTPUT_FORMATS = values.formats;
  if (values['segment-duration']) env.SEGMENT_DURATION = values['segment-duration'];
  if (values.preset) env.X264_PRESET = values.preset;
  // A file, never the key itself: a command line is readable by every user of the host.
  if (values.encryption) env.ENCRYPTION_KEYS_FILE = values.encryption;
  if (values['no-thumbnails']) env.THUMBNAILS = 'false';
  if (values.codecs) env.VIDEO_CODECS = values.codecs;
  return {
    input,
    output: values.output,
    quiet: !!values.quiet,
    force: !!values.force,
    report: values.report,
    encrypt: values.encryption !== undefined,
    ...(values.audio ? { audio: values.audio } : {}),
    subtitles,
    env,
  };
}
