import { stat } from 'node:fs/promises';
import { TaskFailure } from '../domain/failures.js';
import { runProcess } from '../process/run-process.js';
import { inputGuardArgs } from './input-formats.js';
import type { StageContext } from './context.js';
import { DEINTERLACE, toneMapToSdr, zimgResize } from './video-filters.js';
import type { MediaInfo } from './media-info.js';
import type { EncodePlan, Rendition } from './plan.js';
import { processFailure } from './process-failure.js';

export const POSTER_NAME = 'poster.jpg';

/** Frames `thumbnail` compares for the poster: enough to step past a flash or a blur (cost: BENCHMARKS.md). */
export const POSTER_CANDIDATE_FRAMES = 12;

/** Where the poster is looked for: a fifth into the video (past black openings and titles), and how many frames. */
export function posterWindow(media: MediaInfo, fps: number): { at: number; frames: number } {
  const span = media.video.duration ?? media.duration;
  const at = span > 1 ? span * 0.2 : 0;
  const frames = Math.max(1, Math.min(POSTER_CANDIDATE_FRAMES, Math.floor((span - at) * fps * 0.8)));
  return { at, frames };
}

/**
 * A frame is too dark to stand for the video when this share (%) of its pixels or more is darker than
 * `DARK_LUMA` (8-bit luma, where black is 16): a fade, a black opening, a title card.
 */
const DARK_SHARE = 90;
const DARK_LUMA = 32;

/**
 * Drops nearly black frames: `blackframe` (amount=0) measures each, `metadata` keeps those under the share.
 * A luma count, far cheaper than `signalstats` (BENCHMARKS.md).
 */
const SKIP_DARK = [
  `blackframe=amount=0:threshold=${DARK_LUMA}`,
  `metadata=mode=select:key=lavfi.blackframe.pblack:value=${DARK_SHARE}:function=less`,
];

/**
 * The filters picking the poster among `frames` (for the encode run's branch and `makePoster`): HDR is
 * tone-mapped first so `thumbnail` compares what the poster shows; one frame is taken as it is.
 */
export function posterPick(
  plan: Pick<EncodePlan, 'toneMap'>,
  size: Pick<Rendition, 'width' | 'height'>,
  frames: number,
  { skipDark = true }: { skipDark?: boolean } = {},
): string[] {
  const thumbnail = [...(skipDark ? SKIP_DARK : []), ...(frames >= 2 ? [`thumbnail=n=${frames}`] : [])];
  const pick = plan.toneMap
    ? [toneMapToSdr(zimgResize(size, 'bicubic')), ...thumbnail]
    : [...thumbnail, `scale=${size.width}:${size.height}:flags=bicubic`];
  return [...pick, 'setsar=1'];
}

/**
 * The poster, when the encode run's window gave none (all dark, or no frames): half-way in past dark frames,
 * then where the encode looked with dark frames allowed, then from the start.
 */
export async function makePoster(job: PosterJob): Promise<void> {
  const { media } = job;
  const fps = media.video.frameRate || 25;
  const window = posterWindow(media, fps);
  const span = media.video.duration ?? media.duration;
  const attempts: PosterWindow[] = [
    // Where an encode run looks, when none did (chunks of a version that made no poster).
    ...(job.encodeWindowFirst ? [window] : []),
    ...(span > 1
      ? [
          {
            at: span / 2,
            frames: Math.max(1, Math.min(FALLBACK_CANDIDATE_FRAMES, Math.floor(span * fps * 0.4))),
          },
        ]
      : []),
    { ...window, skipDark: false },
    ...(window.at > 0 ? [{ ...window, at: 0, skipDark: false }] : []),
  ];
  for (const attempt of attempts) {
    await extractPoster(job, attempt);
    // FFmpeg exits 0 without writing anything when no frame reached the output.
    if (await hasContent(job.outFile)) return;
  }
  throw new TaskFailure('not_a_video', 'the video stream has no frame that can be decoded');
}

/** Frames the fallback compares (2 s at 30 fps): it runs only when the encode run's window was dark. */
const FALLBACK_CANDIDATE_FRAMES = 60;

/** Seconds of input a poster search reads at most from where it starts. */
const POSTER_SCAN_SECONDS = 10;

interface PosterWindow {
  at: number;
  frames: number;
  skipDark?: boolean;
}

/** Whether FFmpeg wrote the file: it exits 0 without writing an image output that no frame reached. */
export async function hasContent(file: string): Promise<boolean> {
  return !!(await stat(file).catch(() => undefined))?.size;
}

/** What a poster is made of and where it goes. */
export interface PosterJob {
  inputPath: string;
  media: MediaInfo;
  plan: Pick<EncodePlan, 'deinterlace' | 'toneMap'>;
  /** The poster's size: the top rung's. */
  size: Pick<Rendition, 'width' | 'height'>;
  outFile: string;
  ctx: StageContext;
  /** Look first where the encode run's poster branch does (`posterWindow`, dark frames skipped). */
  encodeWindowFirst?: boolean;
}

async function extractPoster(
  { inputPath, media, plan, size, outFile, ctx }: PosterJob,
  { at, frames: framesToCompare, skipDark = true }: PosterWindow,
): Promise<void> {
  try {
    await runProcess(
      ctx.tools.ffmpeg,
      [
        '-hide_banner',
        '-nostdin',
        '-y',
        '-v',
        'error',
        ...inputGuardArgs(),
        '-ss',
        at.toFixed(3),
        // Skipping dark frames could read on to the end of a long, dark video: a few seconds are enough.
        '-t',
        String(POSTER_SCAN_SECONDS),
        '-i',
        `file:${inputPath}`,
        '-map',
        `0:${media.video.index}`,
        '-vf',
        [
          ...(plan.deinterlace ? [DEINTERLACE] : []),
          ...posterPick(plan, size, framesToCompare, { skipDark }),
        ].join(','),
        '-frames:v',
        '1',
        '-q:v',
        '3',
        '-update',
        '1',
        `file:${outFile}`,
      ],
      {
        logger: ctx.logger,
        signal: ctx.signal,
        idleTimeoutMs: ctx.idleTimeoutMs,
        timeoutMs: ctx.maxRuntimeMs,
        tempDir: ctx.tempDir,
      },
    );
  } catch (err) {
    throw processFailure(err, 'encode_failed', 'FFmpeg could not extract a poster frame', [
      inputPath,
      outFile,
    ]);
  }
}
