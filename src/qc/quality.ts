import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { runProcess } from '../process/run-process.js';
import type { QualityScore } from './report.js';

export interface QualityOptions {
  ffmpeg: string;
  /** The source file and its video stream index. */
  sourcePath: string;
  videoIndex: number;
  /** The frame rate limit the encoder applied, so the reference has the same frames. */
  frameRateLimit?: number;
  /** A private directory for the statistics files. */
  tempDir: string;
  logger?: Logger;
  signal?: AbortSignal;
  idleTimeoutMs: number;
  maxRuntimeMs: number;
}

/**
 * PSNR and SSIM of one rendition (a playable MP4: init + segments joined) against the source scaled the
 * same way the encoder scaled it, averaged over all frames. PSNR is computed from the mean squared error
 * over the whole clip, as FFmpeg's own summary does.
 */
export async function measureQuality(
  rendition: { name: string; width: number; height: number },
  renditionFile: string,
  options: QualityOptions,
): Promise<QualityScore> {
  const psnrLog = `${rendition.name}.psnr.log`;
  const ssimLog = `${rendition.name}.ssim.log`;
  const ref = [
    ...(options.frameRateLimit ? [`fps=${options.frameRateLimit}`] : []),
    'format=yuv420p',
    `scale=${rendition.width}:${rendition.height}:flags=bicubic`,
    'setsar=1',
    'split[r1][r2]',
  ].join(',');
  const graph = [
    `[1:${options.videoIndex}]${ref}`,
    '[0:v:0]format=yuv420p,setsar=1,split[d1][d2]',
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
      `file:${renditionFile}`,
      '-i',
      `file:${options.sourcePath}`,
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
