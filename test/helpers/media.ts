import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The real clips shared beside the project (../shared/media from the repository root). */
export const sharedMediaDir = path.resolve(fileURLToPath(import.meta.url), '../../../../shared/media');

export const sharedClips = [
  'bbb_720p_5s_h264_aac51.mp4',
  'bbb_720p_30s_vp8_vorbis.webm',
  'iphone_rot90_audio_first.mov',
  'phone_rot180_vfr_720p.mp4',
  'screen_vfr_3026x1386_noaudio.mp4',
  'sar_2x1_noaudio.mp4',
  'bottle_29.83fps_noaudio.mp4',
] as const;

export interface ClipSpec {
  width: number;
  height: number;
  seconds: number;
  audio: boolean;
  fps?: number;
}

const cacheDir = path.join(tmpdir(), 'dvc-test-clips');

/**
 * A short test clip made by FFmpeg (test pattern, sine tone), cached per spec for the whole test run.
 * Encoded fast at high bitrate so it is a clean source.
 */
export async function generateClip(spec: ClipSpec): Promise<string> {
  mkdirSync(cacheDir, { recursive: true });
  const fps = spec.fps ?? 30;
  const file = path.join(
    cacheDir,
    `${spec.width}x${spec.height}_${spec.seconds}s_${fps}fps_${spec.audio ? 'a' : 'na'}.mp4`,
  );
  if (existsSync(file)) return file;
  const tmp = `${file}.${process.pid}.tmp.mp4`;
  const args = [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${spec.width}x${spec.height}:rate=${fps}:duration=${spec.seconds}`,
  ];
  if (spec.audio)
    args.push('-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${spec.seconds}`);
  args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '18', '-pix_fmt', 'yuv420p');
  if (spec.audio) args.push('-c:a', 'aac', '-b:a', '128k');
  args.push(tmp);
  await run('ffmpeg', args);
  await run('mv', [tmp, file]);
  return file;
}

/**
 * An HDR clip as a phone or an HDR10 master codes it: the SDR picture `sdrSource` (a lossless file, to compare
 * against) taken to BT.2020 and PQ or HLG by zimg, in 10-bit HEVC whose stream says so. No audio.
 */
export async function makeHdrClip(
  sdrSource: string,
  out: string,
  transfer: 'smpte2084' | 'arib-std-b67',
): Promise<string> {
  await run('ffmpeg', [
    ...['-v', 'error', '-y', '-i', sdrSource, '-an', '-vf'],
    `zscale=tin=709:t=${transfer}:pin=709:p=2020:min=709:m=2020_ncl,format=yuv420p10le`,
    ...['-c:v', 'libx265', '-preset', 'ultrafast', '-tag:v', 'hvc1'],
    ...['-x265-params', `log-level=error:colorprim=bt2020:transfer=${transfer}:colormatrix=bt2020nc`],
    out,
  ]);
  return out;
}

/** A test pattern kept losslessly (H.264 at QP 0), the SDR reference an HDR clip is made from. */
export async function makeLosslessPattern(out: string, width: number, height: number, seconds: number) {
  await run('ffmpeg', [
    ...[
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${width}x${height}:rate=25:duration=${seconds}`,
    ],
    ...['-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-qp', '0', out],
  ]);
  return out;
}

/**
 * One VP9 stream whose picture size changes, as a WebRTC recording's does: a 1 s test-pattern part per size
 * (VP9 keeps odd 4:2:0 sizes), joined without re-encoding. No audio.
 */
export async function makeSizeChangingClip(dir: string, sizes: string[], out: string): Promise<string> {
  const parts: string[] = [];
  for (const [i, size] of sizes.entries()) {
    const part = path.join(dir, `part${i}.webm`);
    await run('ffmpeg', [
      ...['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=25:duration=1`],
      ...['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-b:v', '300k', part],
    ]);
    parts.push(`file '${part}'`);
  }
  const list = path.join(dir, 'parts.txt');
  await writeFile(list, parts.join('\n') + '\n');
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', out]);
  return out;
}
