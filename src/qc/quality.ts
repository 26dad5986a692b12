import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { DEINTERLACE, EVEN_CROP, toneMapToSdr, zimgResize } from '../pipeline/video-filters.js';
import { runProcess } from '../process/run-process.js';
import type { QualityScore } from '../domain/qc-report.js';

export interface QualityOptions {
  ffmpeg: string;
  ffprobe: string;
  /** The source file and its video stream index. */
  sourcePath: string;
  videoIndex: number;
  /** The frame rate limit the encoder applied, so the reference has the same frames. */
  frameRateLimit?: number;
  /** Whether the encoder deinterlaced the source or tone-mapped it to SDR: the reference is made the same way. */
  deinterlace?: boolean;
  toneMap?: boolean;
  /** A private directory for the statistics files, and the programs' temporary directory. */
  tempDir: string;
  logger?: Logger;
  signal?: AbortSignal;
  idleTimeoutMs: number;
  maxRuntimeMs: number;
}

/**
 * PSNR (from the clip's mean squared error) and SSIM of one joined rendition against the source scaled as the
 * encoder scaled it; frames paired in order, not by timestamp (docs/design-notes.md, "Quality check").
 */
export async function measureQuality(
  rendition: { name: string; width: number; height: number },
  renditionFile: string,
  options: QualityOptions,
): Promise<QualityScore> {
  const psnrLog = `${rendition.name}.psnr.log`;
  const ssimLog = `${rendition.name}.ssim.log`;
  let grid = options.frameRateLimit ? `fps=${options.frameRateLimit}` : undefined;
  if (!grid) {
    const probeOptions = { logger: options.logger, signal: options.signal, tempDir: options.tempDir };
    const [source, output] = await Promise.all([
      countFrames(options.ffprobe, options.sourcePath, String(options.videoIndex), probeOptions),
      countFrames(options.ffprobe, renditionFile, 'v:0', probeOptions),
    ]);
    if (source.frames !== output.frames && output.rate) grid = `fps=${output.rate}:round=near`;
  }
  const ref = [
    ...(options.deinterlace ? [DEINTERLACE] : []),
    ...(grid ? [grid] : []),
    ...(options.toneMap
      ? [EVEN_CROP, toneMapToSdr(zimgResize(rendition, 'bicubic'))]
      : ['format=yuv420p', `scale=${rendition.width}:${rendition.height}:flags=bicubic`]),
    'setsar=1',
    'setpts=N/(25*TB)',
    'split[r1][r2]',
  ].join(',');
  const graph = [
    `[1:${options.videoIndex}]${ref}`,
    '[0:v:0]format=yuv420p,setsar=1,setpts=N/(25*TB),split[d1][d2]',
    // Statistics files are named relative to the working directory: no path ever needs escaping.
    `[d1][r1]psnr=stats_file=${psnrLog}[o1]`,
    `[d2][r2]ssim=stats_file=${ssimLog}[o2]`,
  ].join(';');
  await runProcess(
    options.ffmpeg,
    [
      '-hide_banner',
      '-nostdin',
      '-v',
      'error',
      '-protocol_whitelist',
      'file',
      '-i',
      // Absolute: the process runs in the statistics directory.
      `file:${path.resolve(renditionFile)}`,
      '-i',
      `file:${path.resolve(options.sourcePath)}`,
      '-filter_complex',
      graph,
      '-map',
      '[o1]',
      '-f',
      'null',
      '-',
      '-map',
      '[o2]',
      '-f',
      'null',
      '-',
    ],
    {
      cwd: options.tempDir,
      tempDir: options.tempDir,
      logger: options.logger,
      signal: options.signal,
      idleTimeoutMs: options.idleTimeoutMs,
      timeoutMs: options.maxRuntimeMs,
    },
  );
  const psnrText = await readFile(path.join(options.tempDir, psnrLog), 'utf8');
  const ssimText = await readFile(path.join(options.tempDir, ssimLog), 'utf8');
  return { rendition: rendition.name, psnr: psnrFromStats(psnrText), ssim: ssimFromStats(ssimText) };
}

/** Frames (packets) of one video stream and its frame rate, by demuxing only. */
async function countFrames(
  ffprobe: string,
  file: string,
  stream: string,
  options: { logger?: Logger; signal?: AbortSignal; tempDir?: string },
): Promise<{ frames: number; rate?: string }> {
  const { stdout } = await runProcess(
    ffprobe,
    [
      '-v',
      'error',
      '-protocol_whitelist',
      'file',
      '-select_streams',
      stream,
      '-count_packets',
      '-print_format',
      'json',
      '-show_entries',
      'stream=nb_read_packets,r_frame_rate',
      `file:${path.resolve(file)}`,
    ],
    { ...options, timeoutMs: 300_000 },
  );
  const s = (JSON.parse(stdout) as { streams?: { nb_read_packets?: string; r_frame_rate?: string }[] })
    .streams?.[0];
  const rate = s?.r_frame_rate && /^\d+\/[1-9]\d*$/.test(s.r_frame_rate) ? s.r_frame_rate : undefined;
  return { frames: Number(s?.nb_read_packets ?? 0), rate };
}

/** Mean PSNR in dB from the per-frame `mse_avg` values of FFmpeg's psnr statistics (8-bit). */
export function psnrFromStats(text: string): number {
  const mses = [...text.matchAll(/mse_avg:([\d.]+)/g)].map((m) => Number(m[1]));
  if (!mses.length) throw new Error('the psnr filter compared no frames');
  const mse = mses.reduce((a, b) => a + b, 0) / mses.length;
  const db = mse === 0 ? 100 : Math.min(100, 10 * Math.log10((255 * 255) / mse));
  return Math.round(db * 100) / 100;
}

/** Mean of the per-frame `All` values of FFmpeg's ssim statistics. */
export function ssimFromStats(text: string): number {
  const values = [...text.matchAll(/All:([\d.]+)/g)].map((m) => Number(m[1]));
  if (!values.length) throw new Error('the ssim filter compared no frames');
  return Math.round((values.reduce((a, b) => a + b, 0) / values.length) * 10000) / 10000;
}
