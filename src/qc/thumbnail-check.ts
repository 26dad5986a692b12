import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { QcCheck } from '../domain/qc-report.js';
import { resolveUri } from '../manifests/hls.js';
import { parseThumbnailVtt, type ThumbnailCue } from '../manifests/thumbnail-vtt.js';
import { jpegSize } from './jpeg-size.js';

/** How far the cues' end may be from the package's: a thumbnail track ends with the video, near enough. */
const END_TOLERANCE_SECONDS = 0.5;
/** Cues meet exactly as written, to the millisecond. */
const GAP_TOLERANCE_SECONDS = 0.0015;

export interface ThumbnailFindings {
  cues: ThumbnailCue[];
  /** Each sheet the cues name, by package key: its pixel size, or undefined when it is missing or unreadable. */
  sheets: Map<string, { width: number; height: number } | undefined>;
  /** The package's key of the track: cue URLs are relative to it. */
  track: string;
  /** How long the package lasts (its longest stream). */
  duration: number;
}

/**
 * The thumbnail track covers the whole video, from 0 to its end, with no gap or overlap between cues, and
 * every cue's rectangle lies inside its sheet (which exists and is a JPEG).
 */
export function checkThumbnails({ cues, sheets, track, duration }: ThumbnailFindings): QcCheck {
  const problems: string[] = [];
  const at = (i: number) => `cue ${i + 1}`;
  if (cues.length === 0) problems.push('the track has no cue');
  else if (cues[0]!.start !== 0) problems.push(`the first cue starts at ${cues[0]!.start} s, not 0`);
  cues.forEach((cue, i) => {
    if (!(cue.end > cue.start)) problems.push(`${at(i)} ends at ${cue.end} s, not after its start`);
    const next = cues[i + 1];
    if (next && Math.abs(next.start - cue.end) > GAP_TOLERANCE_SECONDS) {
      problems.push(`${at(i)} ends at ${cue.end} s and the next starts at ${next.start} s`);
    }
    const sheet = sheets.get(resolveUri(track, cue.url));
    if (!sheet) problems.push(`${at(i)}'s sheet ${cue.url} is missing or not a JPEG`);
    else if (!cue.rect) problems.push(`${at(i)} has no #xywh rectangle`);
    else {
      const { x, y, w, h } = cue.rect;
      if (!(w > 0 && h > 0) || x + w > sheet.width || y + h > sheet.height) {
        problems.push(
          `${at(i)}'s rectangle ${x},${y},${w},${h} is not inside ${sheet.width}x${sheet.height}`,
        );
      }
    }
  });
  const end = cues.at(-1)?.end ?? 0;
  if (cues.length && Math.abs(end - duration) > END_TOLERANCE_SECONDS) {
    problems.push(`the cues end at ${end.toFixed(3)} s, the package at ${duration.toFixed(3)} s`);
  }
  return problems.length
    ? {
        name: 'thumbnails',
        passed: false,
        detail: `${problems.slice(0, 4).join('; ')}${problems.length > 4 ? ` and ${problems.length - 4} more` : ''}`,
      }
    : {
        name: 'thumbnails',
        passed: true,
        detail: `${cues.length} cues from 0 to ${end.toFixed(3)} s without gaps, every rectangle inside its sheet (${sheets.size})`,
      };
}

/** Reads the track and the sheets it names from the package on disk, then checks them. */
export async function checkThumbnailTrack(dir: string, track: string, duration: number): Promise<QcCheck> {
  let cues: ThumbnailCue[];
  try {
    cues = parseThumbnailVtt(await readFile(path.join(dir, track), 'utf8'));
  } catch (err) {
    return { name: 'thumbnails', passed: false, detail: `${track}: ${(err as Error).message}` };
  }
  const sheets = new Map<string, { width: number; height: number } | undefined>();
  for (const cue of cues) {
    const key = resolveUri(track, cue.url);
    if (sheets.has(key)) continue;
    sheets.set(
      key,
      key.startsWith('!') ? undefined : await jpegSize(path.join(dir, key)).catch(() => undefined),
    );
  }
  return checkThumbnails({ cues, sheets, track, duration });
}
