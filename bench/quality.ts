import { execFile } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runForStderr } from './spawn.js';

const execFileAsync = promisify(execFile);

export interface RungQuality {
  rung: string;
  width: number;
  height: number;
  /** Video bitrate of the rung as packaged (init + segments over the duration), kbit/s. */
  kbps: number;
  psnrY: number;
  psnrAvg: number;
  ssimY: number;
  ssimAll: number;
}

/**
 * PSNR and SSIM of every video rung of a package against the source scaled to that rung's size (bicubic, as the
 * encoders scale): each rung's init segment and media segments are joined into one file, which is what a
 * player decodes. Timestamps are rebased to zero on both sides so frames pair up whatever the edit lists say.
 */
export async function measureQuality(
  source: string,
  packageDir: string,
  durationSeconds: number,
): Promise<RungQuality[]> {
  const rungs = (await readdir(packageDir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && e.name.startsWith('video_'))
    .map((e) => e.name)
    .sort((a, b) => parseInt(a.slice(6)) - parseInt(b.slice(6)));
  const tmp = await mkdtemp(path.join(tmpdir(), 'dvc-bench-q-'));
  try {
    const out: RungQuality[] = [];
    for (const rung of rungs) {
      const dir = path.join(packageDir, rung);
      const segments = (await readdir(dir))
        .filter((f) => /^\d+\.m4s$/.test(f))
        .sort((a, b) => parseInt(a) - parseInt(b));
      const joined = path.join(tmp, `${rung}.mp4`);
      const sink = await open(joined, 'w');
      let bytes = 0;
      try {
        for (const f of ['init.mp4', ...segments]) {
          const data = await readFile(path.join(dir, f));
          bytes += data.length;
          await sink.write(data);
        }
      } finally {
        await sink.close();
      }
      const q = await measureFileQuality(source, joined);
      out.push({ rung, kbps: Math.round((bytes * 8) / durationSeconds / 1000), ...q });
    }
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export type FileQuality = Omit<RungQuality, 'rung' | 'kbps'>;

/** PSNR and SSIM of one encoded file's video against the source scaled to its size. */
export async function measureFileQuality(source: string, file: string): Promise<FileQuality> {
  const { width, height } = await frameSize(file);
  const stderr = await runForStderr('ffmpeg', [
    ...['-hide_banner', '-nostdin', '-i', file, '-i', source],
    '-filter_complex',
    [
      '[0:v]setpts=PTS-STARTPTS,format=yuv420p,setsar=1,split[d1][d2]',
      `[1:v]setpts=PTS-STARTPTS,scale=${width}:${height}:flags=bicubic,format=yuv420p,setsar=1,split[r1][r2]`,
      '[d1][r1]psnr',
      '[d2][r2]ssim',
    ].join(';'),
    ...['-f', 'null', '-'],
  ]);
  const psnr = /PSNR y:([\d.inf]+) u:[\d.inf]+ v:[\d.inf]+ average:([\d.inf]+)/.exec(stderr);
  const ssim = /SSIM Y:([\d.]+) .*All:([\d.]+)/.exec(stderr);
  if (!psnr || !ssim) throw new Error(`no PSNR/SSIM in FFmpeg's output for ${file}`);
  return {
    width,
    height,
    psnrY: Number(psnr[1]),
    psnrAvg: Number(psnr[2]),
    ssimY: Number(ssim[1]),
    ssimAll: Number(ssim[2]),
  };
}

async function frameSize(file: string): Promise<{ width: number; height: number }> {
  const { stdout } = await execFileAsync('ffprobe', [
    ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height'],
    ...['-of', 'csv=p=0', file],
  ]);
  const [width, height] = stdout.trim().split(',').map(Number);
  return { width: width!, height: height! };
}
