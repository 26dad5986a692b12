import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../src/process/run-process.js';

export const sharedMediaDir = path.resolve(fileURLToPath(import.meta.url), '../../../shared/media');

/** Real clips long enough for their timings to mean something; the 2 s phone clips mostly time start-up. */
export const defaultSharedClips = ['bbb_720p_30s_vp8_vorbis.webm', 'bottle_29.83fps_noaudio.mp4'];

export interface GeneratedSpec {
  width: number;
  height: number;
  seconds: number;
  fps: number;
  /**
   * `mandelbrot` (default) makes the encoder work, but its zoom ends in the set's flat inside: over two minutes,
   * nearly all its bits (up to 50 Mbit/s at 1080p) fall in the first third, and its frames take an hour to
   * compute. `testsrc-grain`, moving test patterns under film grain (6.5 Mbit/s at 1080p), costs the same every
   * second, as a film does more than a zoom, and takes two minutes to make; `testsrc` is cheap, for long clips.
   */
  kind?: 'mandelbrot' | 'testsrc-grain' | 'testsrc';
  /** Frames between keyframes (x264's default, 250, when not given). */
  keyint?: number;
}

// Outside /tmp, which machines here clear: the film input takes minutes to make.
const cacheDir = path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'dvc-bench-clips');

/**
 * A clip the encoder has real work on (see GeneratedSpec's `kind`) with temporal noise, like camera grain, and a
 * stereo tone; H.264 High at CRF 23 (the Mandelbrot zoom about 22 Mbit/s at 1080p30, a phone's rate, so decoding
 * costs what a phone upload costs). Cached across runs, outside /tmp.
 */
export async function generatedClip(spec: GeneratedSpec): Promise<string> {
  mkdirSync(cacheDir, { recursive: true });
  const kind = spec.kind ?? 'mandelbrot';
  const file = path.join(
    cacheDir,
    `${kind}2_${spec.width}x${spec.height}_${spec.seconds}s_${spec.fps}fps${spec.keyint ? `_g${spec.keyint}` : ''}.mp4`,
  );
  const size = `${spec.width}x${spec.height}`;
  const video = {
    mandelbrot: `mandelbrot=size=${size}:rate=${spec.fps}:end_scale=0.01`,
    'testsrc-grain': `testsrc2=size=${size}:rate=${spec.fps}`,
    testsrc: `testsrc2=size=${size}:rate=${spec.fps}`,
  }[kind];
  const grain = kind === 'testsrc-grain' ? 6 : 3;
  if (existsSync(file)) return file;
  const tmp = `${file}.${process.pid}.tmp.mp4`;
  await runProcess('ffmpeg', [
    ...['-hide_banner', '-nostdin', '-v', 'error', '-y'],
    ...['-f', 'lavfi', '-i', video],
    ...['-f', 'lavfi', '-i', 'aevalsrc=0.2*sin(440*2*PI*t)|0.2*sin(660*2*PI*t):s=48000'],
    ...['-filter:v', `noise=alls=${grain}:allf=t`],
    ...['-t', String(spec.seconds), '-map', '0:v', '-map', '1:a'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p'],
    ...(spec.keyint ? ['-g', String(spec.keyint)] : []),
    ...['-c:a', 'aac', '-b:a', '160k', '-movflags', '+faststart', tmp],
  ]);
  renameSync(tmp, file);
  return file;
}

export interface BenchInput {
  /** Short label for tables. */
  label: string;
  path: string;
}

/**
 * Resolves `--inputs`: `generated` (15 s 1080p30), `generated:WxH:SECONDS`, `shared` (the default real clips
 * present in ../shared/media), a file name in ../shared/media, or a path.
 */
export async function resolveInputs(list: string[], quick: boolean): Promise<BenchInput[]> {
  const out: BenchInput[] = [];
  for (const item of list) {
    if (item === 'generated' || item.startsWith('generated:')) {
      const [, size, secs] = item.split(':');
      const [w, h] = (size ?? '1920x1080').split('x').map(Number);
      const seconds = Number(secs ?? (quick ? 6 : 15));
      const spec = { width: w!, height: h!, seconds, fps: 30 };
      out.push({ label: `generated ${h}p30 ${seconds}s`, path: await generatedClip(spec) });
    } else if (item === 'shared') {
      for (const name of defaultSharedClips) {
        const file = path.join(sharedMediaDir, name);
        if (existsSync(file)) out.push({ label: name, path: file });
      }
    } else {
      const file = existsSync(item) ? path.resolve(item) : path.join(sharedMediaDir, item);
      if (!existsSync(file)) throw new Error(`input not found: ${item}`);
      out.push({ label: path.basename(file), path: file });
    }
  }
  return out;
}
