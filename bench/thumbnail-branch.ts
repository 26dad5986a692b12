/**
 * What the seek-bar thumbnail branch costs FFmpeg on its own: a decode into `-f null`, alternated with the same
 * decode plus the branch and its image2 output, CPU from `/usr/bin/time`. BENCHMARKS.md, "Seek-bar thumbnails".
 *
 *   npx tsx bench/thumbnail-branch.ts CLIP [ROUNDS]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  imageOutputPrimer,
  planThumbnails,
  primerInput,
  thumbnailFilters,
} from '../src/pipeline/thumbnails.js';

const [clip, roundsArg] = process.argv.slice(2);
if (!clip) throw new Error('usage: tsx bench/thumbnail-branch.ts CLIP [ROUNDS]');
const dir = mkdtempSync(path.join(tmpdir(), 'dvc-thumb-branch-'));
const plan = planThumbnails({ duration: 60 }, { width: 1280, height: 720 });
const sheet = { width: plan.width * plan.columns, height: plan.height * plan.rows };
const branch = imageOutputPrimer(
  `[t]${thumbnailFilters(plan, false, path.join(dir, 'times.txt'))}`,
  'thumbnails',
  1,
);
const input = ['-hide_banner', '-nostdin', '-y', '-v', 'error', '-i', clip, ...primerInput(sheet)];
const decode = [...input, '-filter_complex', '[0:v]format=yuv420p,null[v]', '-map', '[v]', '-f', 'null', '-'];
const withBranch = [
  ...input,
  ...['-filter_complex', `[0:v]format=yuv420p,split=2[v][t];${branch.join(';')}`],
  ...['-map', '[v]', '-f', 'null', '-'],
  ...['-map', '[thumbnails]', '-fps_mode', 'passthrough', '-c:v', 'mjpeg', '-q:v', '5'],
  ...['-start_number', '0', '-f', 'image2', path.join(dir, 'sheet-%d.jpg')],
];
const cpu = (args: string[]) => {
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', 'ffmpeg', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const [user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return user! + sys!;
};
try {
  for (let round = 1; round <= Number(roundsArg ?? 3); round++) {
    const a = cpu(decode);
    const b = cpu(withBranch);
    console.log(
      `round ${round}: decode ${a.toFixed(2)} s, with the branch ${b.toFixed(2)} s: +${(b - a).toFixed(2)} s`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
