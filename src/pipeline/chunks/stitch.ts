import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EncryptionSpec } from '../../domain/encryption.js';
import { runProcess } from '../../process/run-process.js';
import type { StageContext } from '../context.js';
import type { ConversionResult } from '../convert.js';
import type { MediaInfo } from '../media-info.js';
import { packageStreams } from '../package.js';
import { prepareTextTracks } from '../text-tracks.js';
import type { EncodePlan, Rendition } from '../plan.js';
import { makePoster, POSTER_NAME } from '../poster.js';
import { processFailure } from '../process-failure.js';
import { runFfmpeg } from '../run-ffmpeg.js';
import { addHlsImagePlaylist, addThumbnailTrack } from '../thumbnail-track.js';
import {
  packageThumbnails,
  thumbnailFilters,
  thumbnailOutputsIn,
  type ThumbnailResult,
} from '../thumbnails.js';
import { isUrlInput } from './chunk-input.js';

export type StitchStage = 'join' | 'package' | 'poster';

/** A chunk's images: local JPEG files (see VideoChunkResult). */
export interface ChunkImages {
  thumbnails?: Record<number, string>;
  poster?: string;
}

export interface StitchJob {
  /**
   * The input, when it is a local file: the embedded subtitles come from it (without it the package has no text
   * track), and the poster when the chunks found none (else from the joined top rendition).
   */
  inputPath?: string;
  media: MediaInfo;
  plan: EncodePlan;
  /** Each chunk's files by rendition name (what encodeVideoChunk returned), in chunk order. */
  chunkFiles: Array<Record<string, string>>;
  /** Each chunk's first frame time as encodeVideoChunk reported it, in chunk order; a chunk without is probed. */
  chunkStarts?: Array<number | undefined>;
  /**
   * Each chunk's thumbnails and poster candidate (encodeVideoChunk's), in chunk order: the sheets are tiled
   * from them and the poster taken from them. Without them (chunks of an older version), both decode again.
   */
  chunkImages?: ChunkImages[];
  /** Every audio track's file by track name (encodeWholeAudio's `files`). */
  audioFiles?: Record<string, string>;
  /** The first audio track's file alone (encodeWholeAudio's `file`), when `audioFiles` is not given. */
  audioFile?: string;
  /** Local file of each subtitle file of the request, by its filename (as ConvertOptions.subtitleFiles). */
  subtitleFiles?: Record<string, string>;
  workDir: string;
  /** The package's directory for the renditions' segments and playlists (see PackageOptions.mediaDir). */
  mediaDir?: string;
  encryption?: EncryptionSpec;
  ctx: StageContext;
  onProgress?: (stage: StitchStage, fraction: number) => void;
}

/**
 * Joins each rendition's chunks into one file (FFmpeg's concat demuxer, packets copied with their own
 * timestamps) and packages them with the audio as one run's streams are packaged, then the poster and the
 * thumbnail sheets from the chunks' images: the same ConversionResult as convert(), in `workDir/package`.
 */
export async function stitchAndPackage(o: StitchJob): Promise<ConversionResult> {
  const { media, ctx } = o;
  if (o.chunkFiles.length === 0) throw new Error('nothing to stitch: no chunk');
  const joinDir = path.join(o.workDir, 'joined');
  const pkgDir = path.join(o.workDir, 'package');
  await mkdir(joinDir, { recursive: true });
  await mkdir(ctx.tempDir, { recursive: true });

  const fromSource = o.inputPath !== undefined && !isUrlInput(o.inputPath);
  // The text tracks as convert() makes them: from the input's streams and the request's files.
  const text = fromSource
    ? await prepareTextTracks({
        inputPath: o.inputPath!,
        media,
        plan: o.plan,
        sidecars: o.subtitleFiles ?? {},
        dir: path.join(o.workDir, 'text'),
        ctx,
      })
    : { plan: { ...o.plan, textTracks: [] }, files: {} };
  if (!fromSource && o.plan.textTracks.length) {
    ctx.logger.warn(
      { tracks: o.plan.textTracks.length },
      'stitch: no local input, the text tracks are left out',
    );
  }
  const { plan } = text;
  const firstTrack = plan.audioTracks[0];
  const audio = o.audioFiles ?? (o.audioFile && firstTrack ? { [firstTrack.name]: o.audioFile } : {});

  o.onProgress?.('join', 0);
  const first = plan.renditions[0]!;
  // Every rendition of a chunk starts at the same frame: one rendition's first timestamps serve them all. The
  // first chunk's is not needed (it is joined from its start), nor one its encode reported.
  const starts: number[] = [0];
  for (const [i, files] of o.chunkFiles.entries()) {
    if (i > 0) starts.push(o.chunkStarts?.[i] ?? (await firstFrameTime(chunkFile(files, first), ctx)));
  }
  // Variable frame rate: the last frame lasts as the last chunk's file says (see joinRenditions).
  const last = plan.keepFrameTiming
    ? await lastFrame(chunkFile(o.chunkFiles.at(-1)!, first), ctx)
    : undefined;
  const video = await joinRenditions({
    parts: Object.fromEntries(
      plan.renditions.map((r) => [r.name, o.chunkFiles.map((files) => chunkFile(files, r))]),
    ),
    starts,
    last,
    outDir: joinDir,
    ctx,
  });
  o.onProgress?.('join', 1);

  o.onProgress?.('package', 0);
  const pkg = await packageStreams({
    encoded: { video, audio, text: text.files },
    plan,
    pkgDir,
    ctx,
    mediaDir: o.mediaDir,
    encryption: o.encryption ? { spec: o.encryption, keysDir: o.workDir } : undefined,
  });
  o.onProgress?.('package', 1);

  o.onProgress?.('poster', 0);
  const top = plan.renditions.at(-1)!;
  // The chunks' picks in the window the whole run looks in: the first chunk's there that found one.
  const candidate = o.chunkImages?.find((c) => c.poster)?.poster;
  if (candidate) await copyFile(candidate, path.join(pkgDir, POSTER_NAME));
  else
    await makePoster({
      ...(fromSource
        ? { inputPath: o.inputPath!, media, plan }
        : {
            inputPath: video[topRendition(plan).name]!,
            media: asJoinedRendition(media),
            plan: { deinterlace: false, toneMap: false },
          }),
      size: top,
      outFile: path.join(pkgDir, POSTER_NAME),
      ctx,
      // The chunks looked in the window already (all dark there).
      encodeWindowFirst: !o.chunkImages,
    });
  pkg.files.push(POSTER_NAME);
  const thumbnails = o.chunkImages
    ? await tileChunkThumbnails({ ...o, chunkImages: o.chunkImages, pkgDir })
    : await makeThumbnails({ ...o, video, pkgDir });
  if (thumbnails) {
    if (pkg.dashManifest) await addThumbnailTrack(pkgDir, pkg.dashManifest, thumbnails);
    pkg.files.push(thumbnails.vtt, ...thumbnails.sheets);
    if (pkg.hlsMaster) {
      pkg.files.push(await addHlsImagePlaylist(pkgDir, pkg.hlsMaster, thumbnails, media.duration));
    }
  }
  pkg.files.sort();
  // The joined renditions are in the package now: their disk is free for the next task's. The chunks are the
  // caller's (a stitch that fails is run again from them).
  await rm(joinDir, { recursive: true, force: true });
  o.onProgress?.('poster', 1);
  return { media, plan, package: pkg, poster: POSTER_NAME, ...(thumbnails ? { thumbnails } : {}) };
}

function chunkFile(files: Record<string, string>, r: Rendition): string {
  const file = files[r.name];
  if (!file) throw new Error(`a chunk has no file for ${r.name}`);
  return file;
}

/**
 * Each rendition's chunks as one MP4 (one FFmpeg run for all). The concat demuxer places file k at the sum of
 * the spans before it; with each span given as [its first frame's time, the next file's], that is where its
 * frames already are, so the packets keep the timestamps they were encoded with (`-copyts`): the timeline of
 * the whole input.
 */
async function joinRenditions(o: {
  /** Each rendition's chunk files, in chunk order, by rendition name. */
  parts: Record<string, string[]>;
  starts: number[];
  last?: LastFrame;
  outDir: string;
  ctx: StageContext;
}): Promise<Record<string, string>> {
  const quote = (file: string) => `'${file.replace(/'/g, `'\\''`)}'`;
  const inputs: string[] = [];
  const outputs: string[] = [];
  const joined: Record<string, string> = {};
  for (const [k, [name, parts]] of Object.entries(o.parts).entries()) {
    const lines = ['ffconcat version 1.0'];
    parts.forEach((file, i) => {
      lines.push(`file ${quote(file)}`, `inpoint ${i === 0 ? 0 : o.starts[i]!.toFixed(6)}`);
      if (i + 1 < parts.length) lines.push(`outpoint ${o.starts[i + 1]!.toFixed(6)}`);
    });
    const outFile = path.join(o.outDir, `${name}.mp4`);
    const list = `${outFile}.ffconcat`;
    await writeFile(list, lines.join('\n') + '\n');
    // The list and the chunks are the task's own files: local ones only, as MP4.
    inputs.push(...['-protocol_whitelist', 'file', '-format_whitelist', 'concat,mov', '-safe', '0']);
    inputs.push(...['-f', 'concat', '-i', `file:${list}`]);
    outputs.push(...['-map', `${k}:v:0`, '-c', 'copy', '-map_metadata', '-1']);
    // FFmpeg's MP4 reader gives a packet no duration where an edit list places the track (a chunk's start),
    // and the writer then gives the last frame an average one: its own is set again, from where the video
    // ends. Frames in decoding order are in presentation order here (no B-frames with variable timing).
    if (o.last) {
      const { pts, end } = o.last;
      outputs.push('-bsf:v', `setts=duration='if(gte(PTS,${pts}/TB-0.5),round(${end}/TB-PTS),DURATION)'`);
    }
    outputs.push(...['-f', 'mp4', `file:${outFile}`]);
    joined[name] = outFile;
  }
  await runFfmpeg({
    args: [...['-hide_banner', '-nostdin', '-y', '-v', 'error', '-copyts'], ...inputs, ...outputs],
    ctx: o.ctx,
    code: 'package_failed',
    what: 'FFmpeg could not join the chunks',
    hidePaths: [o.outDir],
  });
  return joined;
}

interface LastFrame {
  /** Its time, and where it ends (the end of the video), in seconds. */
  pts: number;
  end: number;
}

/** A chunk file's last video frame, from its packets and the track's length (no decoding). */
async function lastFrame(file: string, ctx: StageContext): Promise<LastFrame> {
  const { stdout } = await runProcess(
    ctx.tools.ffprobe,
    [
      ...['-v', 'error', '-protocol_whitelist', 'file', '-select_streams', 'v:0', '-of', 'json'],
      ...['-show_entries', 'stream=start_time,duration:packet=pts_time', `file:${file}`],
    ],
    { logger: ctx.logger, signal: ctx.signal, timeoutMs: ctx.idleTimeoutMs, tempDir: ctx.tempDir },
  ).catch((err: unknown) => {
    throw processFailure(err, 'encode_failed', 'a chunk cannot be read', [path.dirname(file)]);
  });
  const parsed = JSON.parse(stdout) as {
    streams?: { start_time?: string; duration?: string }[];
    packets?: { pts_time?: string }[];
  };
  const times = (parsed.packets ?? []).map((p) => Number(p.pts_time)).filter(Number.isFinite);
  const stream = parsed.streams?.[0];
  const end = Number(stream?.start_time) + Number(stream?.duration);
  if (times.length === 0 || !Number.isFinite(end))
    throw new Error(`${path.basename(file)} has no video frame`);
  const pts = times.reduce((a, b) => Math.max(a, b));
  return { pts, end: Math.max(end, pts) };
}

/** The time of a file's first video frame (its first packet in decoding order is a keyframe). */
async function firstFrameTime(file: string, ctx: StageContext): Promise<number> {
  const { stdout } = await runProcess(
    ctx.tools.ffprobe,
    [
      ...['-v', 'error', '-protocol_whitelist', 'file', '-select_streams', 'v:0'],
      ...['-read_intervals', '%+#1', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', `file:${file}`],
    ],
    { logger: ctx.logger, signal: ctx.signal, timeoutMs: ctx.idleTimeoutMs, tempDir: ctx.tempDir },
  ).catch((err: unknown) => {
    throw processFailure(err, 'encode_failed', 'a chunk cannot be read', [path.dirname(file)]);
  });
  const t = Number(stdout.trim().split('\n')[0]);
  if (!Number.isFinite(t)) throw new Error(`${path.basename(file)} has no video frame`);
  return t;
}

/** The renditions smallest first, H.264 first within a size (the fastest to decode). */
function bySize(plan: EncodePlan): Rendition[] {
  const h264 = (r: Rendition) => Number(r.codec === 'h264');
  return [...plan.renditions].sort((a, b) => a.width * a.height - b.width * b.height || h264(b) - h264(a));
}

/** The top size's rendition to decode. */
function topRendition(plan: EncodePlan): Rendition {
  const all = bySize(plan);
  const top = all.at(-1)!;
  return all.find((r) => r.width === top.width && r.height === top.height)!;
}

/** The input's description as a joined rendition's file has it: one video stream, first. */
function asJoinedRendition(media: MediaInfo): MediaInfo {
  return { ...media, video: { ...media.video, index: 0 } };
}

/**
 * The seek-bar sheets tiled from the chunks' thumbnails (small JPEGs: no video is decoded), as the whole run's
 * `tile` makes them: slot by slot from the first, a later chunk's frame for a slot two chunks made (the fps
 * filter gives a slot the last frame before its half-way, which the later chunk holds), a slot none made (a
 * frame spanning a join) filled from the one before.
 */
async function tileChunkThumbnails(
  o: StitchJob & { chunkImages: ChunkImages[]; pkgDir: string },
): Promise<ThumbnailResult | undefined> {
  const thumbs = o.plan.thumbnails;
  if (!thumbs) return undefined;
  const bySlot = new Map<number, string>();
  for (const c of o.chunkImages)
    for (const [slot, file] of Object.entries(c.thumbnails ?? {})) bySlot.set(Number(slot), file);
  if (bySlot.size === 0) return undefined;
  const slots = [...bySlot.keys()];
  const first = Math.min(...slots);
  const last = Math.max(...slots);
  const dir = path.join(o.workDir, 'thumbnails');
  const frames = path.join(dir, 'frames');
  await mkdir(frames, { recursive: true });
  const outputs = thumbnailOutputsIn(dir);
  const times: string[] = [];
  let file = bySlot.get(first)!;
  for (let slot = first; slot <= last; slot++) {
    file = bySlot.get(slot) ?? file;
    await copyFile(file, path.join(frames, `t-${slot - first + 1}.jpg`));
    times.push(`frame:${slot - first} pts:${slot} pts_time:${slot * thumbs.interval}`);
  }
  await writeFile(outputs.times, times.join('\n') + '\n');
  await runFfmpeg({
    args: [
      ...['-hide_banner', '-nostdin', '-y', '-v', 'error'],
      ...['-protocol_whitelist', 'file', '-format_whitelist', 'image2', '-f', 'image2'],
      ...['-framerate', '25', '-start_number', '1', '-i', `file:${path.join(frames, 't-%d.jpg')}`],
      ...['-vf', `tile=${thumbs.columns}x${thumbs.rows}`, '-fps_mode', 'passthrough'],
      ...['-c:v', 'mjpeg', '-q:v', '5', '-start_number', '1', '-f', 'image2', `file:${outputs.pattern}`],
    ],
    ctx: o.ctx,
    code: 'encode_failed',
    what: 'FFmpeg could not tile the thumbnails',
    hidePaths: [dir],
  });
  await rm(frames, { recursive: true, force: true });
  return packageSheets(o, outputs, thumbs);
}

/** The sheets and their VTT into the package, as the unsplit run places them. */
function packageSheets(
  o: StitchJob & { pkgDir: string },
  outputs: ReturnType<typeof thumbnailOutputsIn>,
  thumbs: NonNullable<EncodePlan['thumbnails']>,
): Promise<ThumbnailResult | undefined> {
  return packageThumbnails({
    outputs,
    plan: thumbs,
    pkgDir: o.pkgDir,
    mediaDir: o.mediaDir,
    duration: o.media.duration,
  });
}

/**
 * Chunks that made no thumbnails (an older version's): the seek-bar thumbnails from a decode of the smallest
 * joined rendition at least their size, with the times the frames carry: the input's.
 */
async function makeThumbnails(
  o: StitchJob & { video: Record<string, string>; pkgDir: string },
): Promise<ThumbnailResult | undefined> {
  const thumbs = o.plan.thumbnails;
  if (!thumbs) return undefined;
  const source =
    bySize(o.plan).find((r) => r.width >= thumbs.width && r.height >= thumbs.height) ?? topRendition(o.plan);
  const dir = path.join(o.workDir, 'thumbnails');
  await mkdir(dir, { recursive: true });
  const outputs = thumbnailOutputsIn(dir);
  const args = [
    ...['-hide_banner', '-nostdin', '-y', '-v', 'error'],
    ...['-protocol_whitelist', 'file', '-format_whitelist', 'mov', '-copyts'],
    ...['-i', `file:${o.video[source.name]!}`],
    ...['-filter_complex', `[0:v:0]${thumbnailFilters(thumbs, false, outputs.times)}[thumbnails]`],
    ...['-map', '[thumbnails]', '-fps_mode', 'passthrough', '-c:v', 'mjpeg', '-q:v', '5'],
    // Sheets from 1, as the encode's are once its primer (frame 0) is dropped.
    ...['-start_number', '1', '-f', 'image2', `file:${outputs.pattern}`],
  ];
  await runFfmpeg({
    args,
    ctx: o.ctx,
    code: 'encode_failed',
    what: 'FFmpeg could not make the thumbnails',
    hidePaths: [dir],
  });
  return packageSheets(o, outputs, thumbs);
}
