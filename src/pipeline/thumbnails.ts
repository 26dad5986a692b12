import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { MediaInfo } from './media-info.js';
import { toneMapToSdr, zimgResize } from './video-filters.js';

/** The WebVTT track of the seek-bar thumbnails, beside the manifests. */
export const THUMBNAILS_VTT = 'thumbnails.vtt';
/** The sheets' directory, inside the package's media directory (never replaced, like the segments). */
export const THUMBNAIL_DIR = 'thumbnails';
/** A sheet's file name; `$Number$` from 1, as the DASH image track's SegmentTemplate names it. */
export const sheetName = (n: number) => `sheet-${n}.jpg`;

/** One small frame every `interval` seconds, `columns` × `rows` of them to a JPEG sheet. */
export interface ThumbnailPlan {
  /** Whole seconds: 2 up to 20 minutes (at most ~600 thumbnails), longer after, never over 10. */
  interval: number;
  width: number;
  height: number;
  columns: number;
  rows: number;
}

const SHEET_COLUMNS = 10;
const SHEET_ROWS = 10;
/** Pixels of a 240×135 thumbnail: every shape gets about as many, its width kept within 160–240. */
const THUMBNAIL_AREA = 240 * 135;
const MIN_WIDTH = 160;
const MAX_WIDTH = 240;
const MAX_THUMBNAILS = 600;

/**
 * The thumbnails of a video whose top rung is `top`: the rung's shape (rotation and non-square pixels already
 * applied), never larger than it.
 */
export function planThumbnails(
  media: Pick<MediaInfo, 'duration'>,
  top: { width: number; height: number },
): ThumbnailPlan {
  const aspect = top.width / top.height;
  const width = Math.min(
    top.width,
    Math.max(MIN_WIDTH, Math.min(MAX_WIDTH, Math.round(Math.sqrt(THUMBNAIL_AREA * aspect)))),
  );
  const even = (v: number) => Math.max(2, Math.round(v / 2) * 2);
  const interval = Math.min(10, Math.max(2, Math.ceil(media.duration / MAX_THUMBNAILS)));
  return {
    interval,
    width: even(width),
    height: even(width / aspect),
    columns: SHEET_COLUMNS,
    rows: SHEET_ROWS,
  };
}

/**
 * The encode's thumbnail branch: one frame per interval first (so the rest costs nothing), scaled
 * (tone-mapped at that size), its time written to `timesFile`, then tiled into sheets.
 */
export function thumbnailFilters(
  thumbs: ThumbnailPlan,
  toneMap: boolean,
  timesFile: string,
  { tile = true }: { tile?: boolean } = {},
): string {
  const size = { width: thumbs.width, height: thumbs.height };
  return [
    // Thumbnail i at i × interval (the DASH track's timing) for a video that starts at 0. Not `start_time=0`:
    // a graph FFmpeg rebuilds midway (a stream changing size) would pad it from 0 again, back in time.
    `fps=fps=1/${thumbs.interval}`,
    toneMap ? toneMapToSdr(zimgResize(size, 'bicubic')) : `scale=${size.width}:${size.height}:flags=bicubic`,
    'setsar=1',
    // `metadata` prints only frames that carry some: each thumbnail gets a key, then its time is printed.
    'metadata=mode=add:key=thumbnail:value=1',
    `metadata=mode=print:key=thumbnail:file=${filterOptionValue(timesFile)}`,
    ...(tile ? [`tile=${thumbs.columns}x${thumbs.rows}`] : []),
  ].join(',');
}

/**
 * A discarded black frame (number 0) before an image output's own, so FFmpeg's progress, silent until every
 * output has a header, starts at once (docs/design-notes.md, "Image outputs and progress").
 */
export function imageOutputPrimer(branch: string, label: string, input: number) {
  // concat does not move the branch past the primer (both may start at 0, which the encoder refuses now and
  // then): the images are numbered instead, 1/25 s apart, never ahead of the video in the progress.
  const concat = `concat=n=2:v=1:a=0,setpts=N/(25*TB)`;
  return [`${branch}[${label}_frames]`, `[${input}:v][${label}_frames]${concat}[${label}]`];
}

/** The input of one black frame of `size` that `imageOutputPrimer` puts first. */
export function primerInput(size: { width: number; height: number }): string[] {
  return ['-f', 'lavfi', '-i', `color=c=black:s=${size.width}x${size.height}:r=25:d=0.04,format=yuv420p`];
}

/** A value escaped for a filter's option, then for the filter graph (FFmpeg's two levels of quoting). */
function filterOptionValue(value: string): string {
  const option = value.replace(/[\\':]/g, (c) => `\\${c}`);
  return option.replace(/[\\'[\],;]/g, (c) => `\\${c}`);
}

/** What the encode run wrote for the thumbnails, in the streams directory. */
export interface ThumbnailOutputs {
  /** The sheets, `sheet-%d.jpg` from 0 (the primer) up. */
  pattern: string;
  /** The thumbnails' times, as `metadata=mode=print` lists them. */
  times: string;
}

export function thumbnailOutputsIn(dir: string): ThumbnailOutputs {
  return { pattern: path.join(dir, 'sheet-%d.jpg'), times: path.join(dir, 'thumbnail-times.txt') };
}

/** The thumbnails as they are in a package. */
export interface ThumbnailResult {
  plan: ThumbnailPlan;
  /** Package-relative paths. */
  vtt: string;
  sheets: string[];
  /** Each thumbnail's time, seconds from the start. */
  times: number[];
}

/**
 * Moves the sheets into the package (`<mediaDir>/thumbnails/sheet-N.jpg`) and writes the WebVTT track, cues
 * from 0 to `duration` without gaps; undefined when the run made no thumbnail.
 */
export async function packageThumbnails(options: {
  outputs: ThumbnailOutputs;
  plan: ThumbnailPlan;
  pkgDir: string;
  mediaDir?: string;
  duration: number;
}): Promise<ThumbnailResult | undefined> {
  const { outputs, plan, pkgDir } = options;
  const times = parseTimes(await readFile(outputs.times, 'utf8').catch(() => ''));
  const dir = path.dirname(outputs.pattern);
  const made = (await readdir(dir))
    .map((f) => /^sheet-(\d+)\.jpg$/.exec(f))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => Number(m[1]))
    .filter((n) => n > 0)
    .sort((a, b) => a - b);
  await rm(path.join(dir, sheetName(0)), { force: true });
  const perSheet = plan.columns * plan.rows;
  const count = Math.min(times.length, made.length * perSheet);
  if (count === 0) return undefined;
  const sheetDir = options.mediaDir ? `${options.mediaDir}/${THUMBNAIL_DIR}` : THUMBNAIL_DIR;
  await mkdir(path.join(pkgDir, sheetDir), { recursive: true });
  const sheets: string[] = [];
  for (const n of made.slice(0, Math.ceil(count / perSheet))) {
    const key = `${sheetDir}/${sheetName(n)}`;
    await rename(path.join(dir, sheetName(n)), path.join(pkgDir, key));
    sheets.push(key);
  }
  const kept = times.slice(0, count);
  await writeFile(path.join(pkgDir, THUMBNAILS_VTT), thumbnailVtt(kept, sheets, plan, options.duration));
  return { plan, vtt: THUMBNAILS_VTT, sheets, times: kept };
}

/** The times `metadata=mode=print` wrote, one `frame:N pts:P pts_time:T` line per thumbnail. */
export function parseTimes(text: string): number[] {
  return [...text.matchAll(/pts_time:(-?[\d.]+)/g)].map((m) => Math.max(0, Number(m[1])));
}

/**
 * The WebVTT track: thumbnail i from its own time (0 for the first) to the next one's, the last to
 * `duration`, each cue pointing at its rectangle of its sheet (`sheet-1.jpg#xywh=x,y,w,h`).
 */
export function thumbnailVtt(
  times: number[],
  sheets: string[],
  plan: ThumbnailPlan,
  duration: number,
): string {
  const perSheet = plan.columns * plan.rows;
  const lines = ['WEBVTT', ''];
  times.forEach((t, i) => {
    const start = i === 0 ? 0 : t;
    const end = i + 1 < times.length ? times[i + 1]! : Math.max(duration, start + 0.001);
    const cell = i % perSheet;
    const x = (cell % plan.columns) * plan.width;
    const y = Math.floor(cell / plan.columns) * plan.height;
    lines.push(
      `${vttTime(start)} --> ${vttTime(end)}`,
      `${sheets[Math.floor(i / perSheet)]}#xywh=${x},${y},${plan.width},${plan.height}`,
      '',
    );
  });
  return lines.join('\n');
}

function vttTime(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${s.toFixed(3).padStart(6, '0')}`;
}
