import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { runProcess } from '../process/run-process.js';
import type { StageContext } from './context.js';
import type { EncodeOutputs } from './ffmpeg-args.js';
import { labelDashTracks } from './dash-labels.js';
import { raiseHlsBandwidth } from './hls-bandwidth.js';
import { markHlsDefaultAudio } from './hls-defaults.js';
import { UNDETERMINED } from './languages.js';
import {
  drmLabelField,
  encryptionArgs,
  withoutKeyText,
  type PackagerEncryption,
} from './packager-encryption.js';
import type { AudioPlan, EncodePlan, TextTrackPlan } from './plan.js';
import { diskFullReport, processFailure } from './process-failure.js';

/**
 * The package's directory of the first audio track's segments: `audio/init.mp4`, `audio/N.m4s`; the others are
 * `audio_2/`, `audio_3/`… (all served as audio/mp4).
 */
export const AUDIO_DIR = 'audio';

/** The HLS group of every audio rendition: one group, so a player switches language without changing variant. */
const HLS_AUDIO_GROUP = 'audio';

/** The HLS group of every subtitle rendition. */
const HLS_TEXT_GROUP = 'subtitles';

/** DASH's Accessibility scheme for audio description (ETSI TS 103 285; `1`: for the visually impaired). */
const AUDIO_DESCRIPTION_ACCESSIBILITY = 'urn:tva:metadata:cs:AudioPurposeCS:2007=1';

export const MANIFEST_NAME = 'manifest.mpd';
export const HLS_MASTER_NAME = 'master.m3u8';
/** Each video rendition's I-frame playlist, beside its media playlist. */
export const IFRAME_PLAYLIST = 'iframe.m3u8';
/** Shaka Packager's threaded I/O cache per file (its default is 32 MiB; see the arguments below). */
const PACKAGER_IO_CACHE_BYTES = 1024 * 1024;

/** The packager's final error line, or a write that failed on a full disk. */
const packagerGaveUp = new RegExp(`Packaging Error:|${diskFullReport.source}`);

/** The streams to package, by rendition and audio track name. */
export type PackageInputs = Pick<EncodeOutputs, 'video' | 'audio'> & {
  /** WebVTT file per text track name. */
  text?: Record<string, string>;
};

export interface PackageResult {
  dir: string;
  /** Relative paths of every file in the package, manifests and playlists included. */
  files: string[];
  dashManifest?: string;
  hlsMaster?: string;
}

/** What `packageStreams` packages, where, and how. */
export interface PackageJob extends PackageOptions {
  encoded: PackageInputs;
  plan: EncodePlan;
  pkgDir: string;
  ctx: StageContext;
}

export interface PackageOptions {
  /**
   * Whether the inputs are pipes written by a running encode: the packager then waits on them without output
   * for as long as the encoder takes, so its watchdogs are the encoder's (see encodeAndPackage).
   */
  streaming?: boolean;
  /**
   * The package's directory for the renditions' segments and playlists (manifests and poster stay on top),
   * so a new package there never overwrites segments players and caches hold (see PackagePublisher).
   */
  mediaDir?: string;
  /** Raw-key encryption of every stream; the keys go to the packager in a private file. */
  encryption?: PackagerEncryption;
}

/**
 * Packages the encoded streams (files, or pipes an encode is writing) with Shaka Packager: CMAF segments
 * shared by a static DASH manifest with SegmentTemplate and, when asked, HLS playlists.
 */
export async function packageStreams(job: PackageJob): Promise<PackageResult> {
  const { encoded, plan, pkgDir, ctx, ...options } = job;
  await mkdir(pkgDir, { recursive: true });
  const dash = plan.formats.includes('dash');
  const hls = plan.formats.includes('hls');
  // Paths relative to the package directory (the packager's cwd), so manifests hold relative URLs only.
  const rel = (file: string) => path.relative(pkgDir, file);
  const media = (name: string) => (options.mediaDir ? `${options.mediaDir}/${name}` : name);
  const descriptors: string[] = [];
  // The renditions of the plan that were encoded (all of them, or the lowest alone for an early manifest).
  for (const r of plan.renditions) {
    const file = encoded.video[r.name];
    if (!file) continue;
    const fields = [
      `in=${rel(file)}`,
      'stream=video',
      `init_segment=${media(r.name)}/init.mp4`,
      `segment_template=${media(r.name)}/$Number$.m4s`,
    ];
    if (hls) fields.push(`playlist_name=${media(r.name)}/playlist.m3u8`);
    if (options.encryption) fields.push(drmLabelField(r));
    // Trick play: an I-frames-only playlist of byte ranges into the same segments (EXT-X-I-FRAME-STREAM-INF),
    // for fast-forward and scrubbing; it comes and goes with the thumbnails.
    if (hls && plan.thumbnails) fields.push(`iframe_playlist_name=${media(r.name)}/${IFRAME_PLAYLIST}`);
    descriptors.push(fields.join(','));
  }
  const encrypted = !!options.encryption;
  for (const track of plan.audioTracks) {
    const file = encoded.audio[track.name];
    if (!file) continue;
    descriptors.push(audioDescriptor(track, rel(file), media(track.name), { hls, encrypted }));
  }
  for (const track of plan.textTracks) {
    const file = encoded.text?.[track.name];
    if (!file) continue;
    // In the clear, encrypted package or not: the packager encrypts no text stream (CENC and cbcs cover
    // audio and video samples), and players read subtitles unencrypted.
    descriptors.push(...textDescriptors(track, rel(file), media(track.name), { dash, hls }));
  }
  const args = [
    ...descriptors,
    // Shaka's default 32 MiB cache per file cost hundreds of MB and page faults for files and pipes that
    // need none; 1 MiB keeps I/O off the muxer threads (BENCHMARKS.md).
    '--io_cache_size',
    String(PACKAGER_IO_CACHE_BYTES),
    '--segment_duration',
    String(plan.segmentDuration),
    // Its temporary manifests on the package's disk: a rename from /tmp into a WORK_DIR on another file
    // system fails (EXDEV). TMPDIR does it for the HLS playlists, which the flag does not cover.
    '--temp_dir',
    ctx.tempDir,
    // Segments are cut only at keyframes, which the encoder placed on the segment grid already.
  ];
  if (dash) {
    // A static (VOD) MPD that still uses SegmentTemplate: numbered segments rather than byte ranges.
    args.push('--generate_static_live_mpd', '--mpd_output', MANIFEST_NAME);
  }
  if (hls) {
    args.push('--hls_master_playlist_output', HLS_MASTER_NAME, '--hls_playlist_type', 'VOD');
  }
  const encryption = options.encryption ? await encryptionArgs(options.encryption) : undefined;
  if (encryption) args.push(...encryption.args);
  try {
    await runProcess(ctx.tools.packager, args, {
      cwd: pkgDir,
      logger: ctx.logger,
      signal: ctx.signal,
      idleTimeoutMs: options.streaming ? undefined : ctx.idleTimeoutMs,
      timeoutMs: options.streaming ? undefined : ctx.maxRuntimeMs,
      tempDir: ctx.tempDir,
      // Its last words: after them it may wait on its input pipes for ever (a segment it could not write to a
      // full disk, while FFmpeg waits for it to read on).
      failOnStderr: packagerGaveUp,
    });
  } catch (err) {
    const failure = processFailure(err, 'package_failed', 'Shaka Packager could not package the streams', [
      pkgDir,
    ]);
    throw options.encryption ? withoutKeyText(failure, options.encryption.spec) : failure;
  } finally {
    await encryption?.cleanup();
  }
  if (dash) {
    const labelled = [...plan.audioTracks, ...plan.textTracks].filter(
      (t) => encoded.audio[t.name] ?? encoded.text?.[t.name],
    );
    await labelDashTracks(
      pkgDir,
      MANIFEST_NAME,
      labelled.map((t) => ({ dir: media(t.name), label: t.label })),
    );
  }
  if (hls) {
    await raiseHlsBandwidth(pkgDir, HLS_MASTER_NAME);
    const defaultAudio = plan.audioTracks.find((t) => t.isDefault && encoded.audio[t.name]);
    await markHlsDefaultAudio(
      pkgDir,
      HLS_MASTER_NAME,
      defaultAudio ? `${media(defaultAudio.name)}/playlist.m3u8` : undefined,
    );
  }
  return {
    dir: pkgDir,
    files: await listFiles(pkgDir),
    dashManifest: dash ? MANIFEST_NAME : undefined,
    hlsMaster: hls ? HLS_MASTER_NAME : undefined,
  };
}

/**
 * One audio track's descriptor, roles set here so exactly one track is `main` (`--default_language` marks
 * every track of a language, description too, and none without one); HLS's DEFAULT=YES follows.
 */
function audioDescriptor(
  track: AudioPlan,
  input: string,
  dir: string,
  { hls, encrypted }: { hls: boolean; encrypted: boolean },
): string {
  const roles = [track.isDefault ? 'main' : 'alternate', ...(track.describesVideo ? ['description'] : [])];
  const fields = [
    `in=${input}`,
    'stream=audio',
    `init_segment=${dir}/init.mp4`,
    `segment_template=${dir}/$Number$.m4s`,
    // The packager refuses `und`; a track without a language simply has none in the manifests.
    ...(track.language !== UNDETERMINED ? [`language=${track.language}`] : []),
    `dash_roles=${roles.join(';')}`,
    ...(track.describesVideo ? [`dash_accessibilities=${AUDIO_DESCRIPTION_ACCESSIBILITY}`] : []),
    // Every audio track takes the audio's key.
    ...(encrypted ? [drmLabelField('audio')] : []),
  ];
  if (hls) {
    fields.push(
      `playlist_name=${dir}/playlist.m3u8`,
      `hls_group_id=${HLS_AUDIO_GROUP}`,
      `hls_name=${track.label}`,
      ...(track.describesVideo ? ['hls_characteristics=public.accessibility.describes-video'] : []),
    );
  }
  return fields.join(',');
}

/**
 * A text track's descriptors from one file: fMP4 `wvtt` for DASH (every DASH player reads it), WebVTT
 * segments for HLS (hls.js and Safari take no `wvtt`), kept apart by `dash_only`/`hls_only`.
 */
function textDescriptors(
  track: TextTrackPlan,
  input: string,
  dir: string,
  { dash, hls }: { dash: boolean; hls: boolean },
): string[] {
  const common = [
    `in=${input}`,
    'stream=text',
    ...(track.language !== UNDETERMINED ? [`language=${track.language}`] : []),
    // DASH role forced-subtitle; HLS FORCED=YES with AUTOSELECT=YES.
    ...(track.forced ? ['forced_subtitle=1'] : []),
  ];
  const descriptors: string[] = [];
  if (dash) {
    descriptors.push(
      [
        ...common,
        `init_segment=${dir}/init.mp4`,
        `segment_template=${dir}/$Number$.m4s`,
        ...(hls ? ['dash_only=1'] : []),
      ].join(','),
    );
  }
  if (hls) {
    descriptors.push(
      [
        ...common,
        `segment_template=${dir}/$Number$.vtt`,
        `playlist_name=${dir}/playlist.m3u8`,
        `hls_group_id=${HLS_TEXT_GROUP}`,
        `hls_name=${track.label}`,
        ...(dash ? ['hls_only=1'] : []),
      ].join(','),
    );
  }
  return descriptors;
}

export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}
