import path from 'node:path';
import { formatConflict } from '../../domain/encryption.js';
import { TaskFailure } from '../../domain/failures.js';
import type { StageContext } from '../context.js';
import { checkLimits, convert, type ConversionResult, type ConvertOptions } from '../convert.js';
import { assertEveryStreamHasAKey } from '../packager-encryption.js';
import { planEncode } from '../plan.js';
import { probeSource } from '../probe.js';
import { assertComplete } from '../truncation.js';
import { encodeVideoChunk, encodeWholeAudio } from './encode-chunk.js';
import { chunksInQueueOrder } from './chunk-starts.js';
import { canSplit, chunksOf } from './plan-chunks.js';
import { stitchAndPackage, type ChunkImages } from './stitch.js';

export interface ChunkedConvertOptions extends ConvertOptions {
  /** About this many seconds per chunk (whole segments); 0 converts in one run. */
  chunkSeconds: number;
  /** Chunks encoded at once (default 1); the audio runs beside them. */
  parallel?: number;
  /** Inputs no longer than this are converted in one run (default 0: any input that makes two chunks). */
  minInputSeconds?: number;
}

/**
 * Converts one local file as split and stitch does across workers, in this process: the audio once, the video
 * in chunks (`parallel` at a time), then the joins, the package, the poster and the thumbnails. An input that
 * cannot be split, or makes a single chunk, is converted by convert() in one run. For tests, and as the
 * fallback of a queue that runs no chunk jobs. An early package is not made.
 */
export async function convertInChunks(
  inputPath: string,
  workDir: string,
  ctx: StageContext,
  options: ChunkedConvertOptions,
): Promise<ConversionResult> {
  const report = options.onProgress ?? (() => {});
  report('probe', 0);
  const probed =
    options.probed ??
    probeSource(inputPath, {
      ffprobe: ctx.tools.ffprobe,
      ffmpeg: ctx.tools.ffmpeg,
      logger: ctx.logger,
      signal: ctx.signal,
      tempDir: ctx.tempDir,
      packetSeconds: options.probePacketSeconds,
    });
  const { media, packets } = await probed;
  checkLimits(media, options.limits);
  await assertComplete(inputPath, media.formatName);
  const plan = planEncode(media, options.settings);
  const verdict = canSplit(plan, media);
  const planned = verdict.ok
    ? chunksOf(media, plan, {
        chunkSeconds: options.chunkSeconds,
        minInputSeconds: options.minInputSeconds ?? 0,
      })
    : [];
  if (planned.length === 0) {
    if (!verdict.ok) ctx.logger.info({ reason: verdict.reason }, 'converted in one run');
    return convert(inputPath, workDir, ctx, { ...options, probed, onEarlyPackage: undefined });
  }
  if (options.encryption) {
    const conflict = formatConflict(options.encryption, plan.formats);
    if (conflict) throw new TaskFailure('invalid_input', conflict);
    assertEveryStreamHasAKey(options.encryption, [
      ...plan.renditions,
      ...(plan.audioTracks.length ? ['audio' as const] : []),
    ]);
  }
  ctx.logger.info({ chunks: planned.length, chunkSeconds: options.chunkSeconds }, 'plan: split');
  // As the queue's chunk jobs get them: their starts from the index, the costliest first.
  const chunks = await chunksInQueueOrder({ inputPath, media, plan, chunks: planned, ctx });
  if (!chunks) return convert(inputPath, workDir, ctx, { ...options, probed, onEarlyPackage: undefined });
  await options.onPlan?.(media, plan, packets);

  // Encoding is 2–97 % of the whole, shared by the chunks by their length (the audio counts as little).
  report('encode', 0);
  const done = new Map<string, number>();
  const weights = new Map<string, number>(chunks.map((c) => [`v${c.index}`, c.end - c.start]));
  weights.set('audio', media.duration * 0.02 * plan.audioTracks.length);
  const total = [...weights.values()].reduce((a, b) => a + b, 0) || 1;
  const progress = (key: string) => (f: number) => {
    done.set(key, f * weights.get(key)!);
    report('encode', 0.02 + 0.95 * ([...done.values()].reduce((a, b) => a + b, 0) / total));
  };

  const chunkDir = path.join(workDir, 'chunks');
  const audio = encodeWholeAudio({
    input: inputPath,
    media,
    plan,
    outFile: path.join(chunkDir, 'audio.mp4'),
    ctx,
    onProgress: progress('audio'),
  });
  const chunkFiles = new Array<Record<string, string>>(chunks.length);
  const chunkImages = new Array<ChunkImages>(chunks.length);
  const chunkStarts = new Array<number | undefined>(chunks.length);
  let next = 0;
  const lane = async () => {
    while (next < chunks.length) {
      const chunk = chunks[next++]!;
      const { files, firstFrame, ...images } = await encodeVideoChunk({
        input: inputPath,
        media,
        plan,
        chunk,
        outDir: path.join(chunkDir, String(chunk.index)),
        ctx,
        onProgress: progress(`v${chunk.index}`),
      }).catch((err: unknown) => {
        // No lane starts another chunk once one has failed.
        next = chunks.length;
        throw err;
      });
      chunkFiles[chunk.index] = files;
      chunkImages[chunk.index] = images;
      chunkStarts[chunk.index] = firstFrame;
    }
  };
  const lanes = Array.from({ length: Math.max(1, options.parallel ?? 1) }, lane);
  // Every run is awaited before a failure is passed on: none is left writing into the work directory.
  const settled = await Promise.allSettled([audio, ...lanes]);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  const audioFiles = (await audio)?.files;

  const stageOf = { join: 'package', package: 'package', poster: 'poster' } as const;
  // Each stitch stage's start and share of the whole.
  const stitchSpan = { join: [0.97, 0.01], package: [0.98, 0.01], poster: [0.99, 0.01] } as const;
  return stitchAndPackage({
    inputPath,
    media,
    plan,
    chunkFiles,
    chunkStarts,
    chunkImages,
    audioFiles,
    subtitleFiles: options.subtitleFiles,
    workDir,
    mediaDir: options.mediaDir,
    encryption: options.encryption,
    ctx,
    onProgress: (stage, f) => report(stageOf[stage], stitchSpan[stage][0] + f * stitchSpan[stage][1]),
  });
}
