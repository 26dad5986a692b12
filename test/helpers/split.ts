import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ParsedMpd } from './package-check.js';

const run = promisify(execFile);

/** Frames FFmpeg decodes from a file's first video stream. */
export async function decodedFrames(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-count_frames', '-select_streams', 'v:0'],
    ...['-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file],
  ]);
  // MPEG-TS prints its program's stream too: the number is the first.
  return Number(stdout.trim().split(/[\s,]/)[0]);
}

/** Each video rendition's segment durations, by height. */
export function videoTimeline(mpd: ParsedMpd): Record<number, number[]> {
  return Object.fromEntries(
    mpd.representations
      .filter((r) => r.contentType === 'video')
      .map((r) => [r.height!, r.durations.map((d) => Math.round(d * 1000) / 1000)]),
  );
}
