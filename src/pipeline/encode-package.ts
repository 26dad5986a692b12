import { mkdir } from 'node:fs/promises';
import { TaskFailure } from '../domain/failures.js';
import { makeFifos } from '../process/make-fifos.js';
import { ProcessError } from '../process/run-process.js';
import type { StageContext } from './context.js';
import { encode, encodeOutputsIn } from './encode.js';
import { imageFrame, type EncodeOutputs } from './ffmpeg-args.js';
import type { MediaInfo } from './media-info.js';
import { packageStreams, type PackageResult } from './package.js';
import type { PackagerEncryption } from './packager-encryption.js';
import type { EncodePlan, Rendition } from './plan.js';
import type { ThumbnailOutputs } from './thumbnails.js';

export interface EncodeAndPackageResult {
  package: PackageResult;
  /** The poster the encode made from its own frames, when its window held a video frame. */
  poster?: string;
  /** The thumbnails' sheets and times the encode wrote, when it made them (see `packageThumbnails`). */
  thumbnails?: ThumbnailOutputs;
  /** The streams as encoded: pipes (gone with their data) unless `keepStreams` asked for files. */
  streams: EncodeOutputs;
}

export interface EncodeAndPackageOptions {
  inputPath: string;
  media: MediaInfo;
  plan: EncodePlan;
  /** Where the encoder's streams go (named pipes, or files with `keepStreams`). */
  streamsDir: string;
  pkgDir: string;
  ctx: StageContext;
  /** The renditions to encode (default: the whole plan). */
  renditions?: Rendition[];
  /** Whether to encode the audio (default: when the plan has audio). */
  audio?: boolean;
  /** Whether to take a poster from the frames (default: yes), at the size of the largest rung encoded. */
  poster?: boolean;
  /** Whether to make the plan's thumbnails (default: yes, when the plan has them). */
  thumbnails?: boolean;
  /** Streams encoded earlier (regular files) to package beside the ones encoded now. */
  alsoPackage?: Pick<EncodeOutputs, 'video' | 'audio'>;
  /** WebVTT file per text track name, packaged with the streams. */
  text?: Record<string, string>;
  /** Write the streams to regular files kept in `streamsDir`, for a later packaging run to reuse. */
  keepStreams?: boolean;
  /** The package's directory for the renditions' segments and playlists (see PackageOptions.mediaDir). */
  mediaDir?: string;
  /** Raw-key encryption of every stream packaged. */
  encryption?: PackagerEncryption;
  onProgress?: (stage: 'encode' | 'package', fraction: number) => void;
}

/**
 * Encodes and packages at once through named pipes (as Shaka Streamer does): no packaging pass afterwards, no
 * intermediate file. The two fail together, with the error of the one that failed first on its own.
 */
export async function encodeAndPackage(options: EncodeAndPackageOptions): Promise<EncodeAndPackageResult> {
  const { inputPath, media, plan, streamsDir, pkgDir, ctx } = options;
  await mkdir(streamsDir, { recursive: true });
  // What this run encodes: the whole plan, or part of it (the lowest rung first, then the rest).
  const encodePlan: EncodePlan = {
    ...plan,
    renditions: options.renditions ?? plan.renditions,
    audioTracks: options.audio === false ? [] : plan.audioTracks,
  };
  const outputs = encodeOutputsIn(streamsDir, encodePlan);
  if (options.poster === false) outputs.poster = undefined;
  if (options.thumbnails === false) outputs.thumbnails = undefined;
  const images = (made: { poster: boolean }) => ({
    poster: made.poster && outputs.poster ? imageFrame(outputs.poster, 1) : undefined,
    thumbnails: outputs.thumbnails,
  });
  const streamFiles = [...Object.values(outputs.video), ...Object.values(outputs.audio)];
  const toPackage = {
    video: { ...options.alsoPackage?.video, ...outputs.video },
    audio: { ...options.alsoPackage?.audio, ...outputs.audio },
    text: options.text ?? {},
  };

  if (options.keepStreams) {
    const made = await encode({
      inputPath,
      media,
      plan: encodePlan,
      outputs,
      ctx,
      onProgress: (f) => options.onProgress?.('encode', f),
    });
    options.onProgress?.('package', 0);
    const pkg = await packageStreams({
      encoded: toPackage,
      plan,
      pkgDir,
      ctx,
      mediaDir: options.mediaDir,
      encryption: options.encryption,
    });
    return { package: pkg, ...images(made), streams: outputs };
  }

  await makeFifos(streamFiles);
  // One signal stops both programs: the caller's cancel, or the failure of either.
  const both = new AbortController();
  const onCallerAbort = () => both.abort();
  ctx.signal?.addEventListener('abort', onCallerAbort, { once: true });
  const pairCtx: StageContext = { ...ctx, signal: both.signal };

  let packagerStuck = false;
  let stuckTimer: NodeJS.Timeout | undefined;
  const packaging = packageStreams({
    encoded: toPackage,
    plan,
    pkgDir,
    ctx: pairCtx,
    streaming: true,
    mediaDir: options.mediaDir,
    encryption: options.encryption,
  });
  // A packager that fails often does so because FFmpeg failed first (a pipe closed before any data): FFmpeg
  // gets a moment to exit with its own, truer reason before it is stopped.
  let partnerTimer: NodeJS.Timeout | undefined;
  packaging.catch(() => {
    partnerTimer = setTimeout(() => both.abort(), PARTNER_EXIT_GRACE_MS);
  });
  const encoding = encode({
    inputPath,
    media,
    plan: encodePlan,
    outputs,
    ctx: pairCtx,
    onProgress: (f) => options.onProgress?.('encode', f),
  }).then(
    (result) => {
      options.onProgress?.('package', 0);
      // The packager has everything once FFmpeg has closed its pipes: it has a watchdog period to finish.
      stuckTimer = setTimeout(() => {
        packagerStuck = true;
        both.abort();
      }, ctx.idleTimeoutMs);
      return result;
    },
    (err: unknown) => {
      both.abort();
      throw err;
    },
  );

  try {
    const [enc, pkg] = await Promise.allSettled([encoding, packaging]);
    if (enc.status === 'fulfilled' && pkg.status === 'fulfilled') {
      return { package: pkg.value, ...images(enc.value), streams: outputs };
    }
    const encErr = enc.status === 'rejected' ? enc.reason : undefined;
    const pkgErr = pkg.status === 'rejected' ? pkg.reason : undefined;
    if (ctx.signal?.aborted) throw encErr ?? pkgErr;
    if (packagerStuck) {
      throw new TaskFailure(
        'timeout',
        `Shaka Packager did not finish within ${Math.round(ctx.idleTimeoutMs / 1000)} s of the end of the encode`,
      );
    }
    if (encErr && !stoppedByPartner(encErr) && !lostItsPipe(encErr)) throw encErr;
    if (pkgErr && !stoppedByPartner(pkgErr)) throw pkgErr;
    throw encErr ?? pkgErr;
  } finally {
    clearTimeout(stuckTimer);
    clearTimeout(partnerTimer);
    ctx.signal?.removeEventListener('abort', onCallerAbort);
  }
}

/** How long FFmpeg may go on after the packager failed, to exit on its own if the fault was its. */
const PARTNER_EXIT_GRACE_MS = 1000;

/** Stopped because the other program failed (the caller's own cancel is handled before this is asked). */
function stoppedByPartner(err: unknown): boolean {
  return err instanceof TaskFailure && err.code === 'cancelled';
}

/** FFmpeg failing to write into a pipe whose reader is gone. */
function lostItsPipe(err: unknown): boolean {
  const cause = err instanceof Error ? err.cause : undefined;
  return cause instanceof ProcessError && /Broken pipe|EPIPE/i.test(cause.stderrTail);
}
