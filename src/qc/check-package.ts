import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ProcessError } from '../process/run-process.js';
import {
  checkAlignment,
  checkAvDurations,
  checkRepresentations,
  checkSegmentDurations,
  checkSegmentsExist,
  streamDuration,
  videoCodecOf,
  type Expectations,
  type StreamView,
} from './checks.js';
import { parseMasterPlaylist, parseMediaPlaylist, resolveUri } from '../manifests/hls.js';
import { parseManifest } from '../manifests/mpd.js';
import type { QcCheck, QcReport, QualityScore } from '../domain/qc-report.js';
import { checkMpdSchema } from './schema.js';
import { checkThumbnailTrack } from './thumbnail-check.js';
import { measureQuality, type QualityOptions } from './quality.js';

export interface PackageUnderCheck {
  /** The package directory on local disk. */
  dir: string;
  /** Keys of the DASH manifest and HLS master playlist in the package, when made. */
  dashManifest?: string;
  hlsMaster?: string;
  /** The key of the seek-bar thumbnails' WebVTT track, when the package has one. */
  thumbnailTrack?: string;
  expect: Expectations;
}

export interface CheckOptions {
  tools: { xmllint: string; ffmpeg: string; ffprobe: string };
  logger?: Logger;
  signal?: AbortSignal;
  /** The programs' temporary directory (see RunProcessOptions.tempDir). */
  tempDir?: string;
  /** Also measure PSNR and SSIM of every video rendition against the source (slow: decodes everything). */
  quality?: Omit<QualityOptions, 'ffmpeg' | 'ffprobe' | 'logger' | 'signal'> & {
    renditions: Expectations['renditions'];
  };
}

/**
 * Checks a package before anyone sees it (README, "Package check"): manifests parse and point at files that
 * exist, segments line up and last what they should, the MPD validates, thumbnails cover the video.
 */
export async function checkPackage(pkg: PackageUnderCheck, options: CheckOptions): Promise<QcReport> {
  // The schema check is another program: it starts first and runs while the package is listed and the
  // manifests are read and checked here. A missing MPD is the segments check's finding, not xmllint's.
  const mpdPath = pkg.dashManifest && path.join(pkg.dir, pkg.dashManifest);
  const schemaCheck = mpdPath
    ? stat(mpdPath).then(
        (s) =>
          s.isFile()
            ? checkMpdSchema(options.tools.xmllint, mpdPath, {
                logger: options.logger,
                signal: options.signal,
                tempDir: options.tempDir,
              })
            : undefined,
        () => undefined,
      )
    : undefined;
  // Awaited below; a throw while reading the manifests must not leave it unhandled.
  schemaCheck?.catch(() => undefined);
  const sizes = await fileSizes(pkg.dir);
  const streams: StreamView[] = [];
  const referenced: string[] = [];
  const parseProblems: string[] = [];
  let playlists = 0;

  if (pkg.dashManifest) {
    referenced.push(pkg.dashManifest);
    try {
      const mpd = parseManifest(await readFile(path.join(pkg.dir, pkg.dashManifest), 'utf8'));
      if (mpd.type !== 'static') parseProblems.push(`the MPD is of type "${mpd.type}", not static`);
      for (const rep of mpd.representations) {
        const at = (url: string) => resolveUri(pkg.dashManifest!, url);
        streams.push({
          format: 'dash',
          id: rep.id,
          kind: rep.contentType,
          width: rep.width,
          height: rep.height,
          codec: videoCodecOf(rep.codecs),
          init: rep.init && at(rep.init),
          segments: rep.segments.map((s) => ({ ...s, url: at(s.url) })),
        });
      }
    } catch (err) {
      parseProblems.push(`${pkg.dashManifest}: ${(err as Error).message}`);
    }
  }
  if (pkg.hlsMaster) {
    referenced.push(pkg.hlsMaster);
    try {
      const master = parseMasterPlaylist(
        await readFile(path.join(pkg.dir, pkg.hlsMaster), 'utf8'),
        pkg.hlsMaster,
      );
      const entries = [
        ...master.variants.map((v) => ({
          uri: v.uri,
          kind: 'video' as const,
          size: v.resolution,
          codec: videoCodecOf(v.codecs),
        })),
        ...master.media.map((m) => ({
          uri: m.uri,
          kind:
            m.type === 'AUDIO'
              ? ('audio' as const)
              : m.type === 'SUBTITLES'
                ? ('text' as const)
                : ('other' as const),
          size: undefined,
          codec: undefined,
        })),
      ];
      for (const entry of entries) {
        referenced.push(entry.uri);
        if (!sizes.has(entry.uri)) continue;
        try {
          const media = parseMediaPlaylist(await readFile(path.join(pkg.dir, entry.uri), 'utf8'), entry.uri);
          playlists++;
          if (!media.ended) parseProblems.push(`${entry.uri} has no EXT-X-ENDLIST`);
          streams.push({
            format: 'hls',
            id: entry.uri,
            kind: entry.kind,
            width: entry.size?.width,
            height: entry.size?.height,
            codec: entry.codec,
            init: media.map,
            segments: media.segments,
          });
        } catch (err) {
          parseProblems.push(`${entry.uri}: ${(err as Error).message}`);
        }
      }
    } catch (err) {
      parseProblems.push(`${pkg.hlsMaster}: ${(err as Error).message}`);
    }
  }
  for (const s of streams) {
    if (s.init) referenced.push(s.init);
    for (const seg of s.segments) referenced.push(seg.url);
  }

  const checks: QcCheck[] = [
    parseProblems.length
      ? { name: 'manifests_parse', passed: false, detail: parseProblems.join('; ').slice(0, 400) }
      : {
          name: 'manifests_parse',
          passed: true,
          detail: [
            pkg.dashManifest && 'the MPD',
            pkg.hlsMaster && `the HLS master and ${playlists} playlists`,
          ]
            .filter(Boolean)
            .join(' and ')
            .concat(' read'),
        },
    checkRepresentations(streams, pkg.expect),
    checkSegmentsExist(referenced, sizes),
    checkAlignment(streams, pkg.expect.frameRate),
    checkSegmentDurations(streams, pkg.expect),
    checkAvDurations(streams, pkg.expect),
  ];
  const schema = await schemaCheck;
  if (schema) checks.push(schema);
  if (pkg.thumbnailTrack) {
    // The track ends with the package: its longest stream, in the one format compared.
    const format = streams.some((s) => s.format === 'dash') ? 'dash' : 'hls';
    const own = streams.filter((s) => s.format === format && (s.kind === 'video' || s.kind === 'audio'));
    const duration = Math.max(0, ...own.map(streamDuration));
    checks.push(await checkThumbnailTrack(pkg.dir, pkg.thumbnailTrack, duration));
  }
  const passed = checks.every((c) => c.passed);
  const report: QcReport = { passed, checks };
  if (options.quality && passed) {
    report.quality = await qualityOf(pkg.dir, streams, options.quality, options);
  }
  return report;
}

async function qualityOf(
  dir: string,
  streams: StreamView[],
  quality: NonNullable<CheckOptions['quality']>,
  options: CheckOptions,
): Promise<QualityScore[]> {
  const format = streams.some((s) => s.format === 'dash') ? 'dash' : 'hls';
  const scores: QualityScore[] = [];
  await mkdir(quality.tempDir, { recursive: true });
  try {
    for (const rendition of quality.renditions) {
      const stream = streams.find(
        (s) =>
          s.format === format &&
          s.kind === 'video' &&
          s.codec === rendition.codec &&
          s.width === rendition.width &&
          s.height === rendition.height,
      );
      if (!stream) continue;
      const joined = path.join(quality.tempDir, `${rendition.name}.mp4`);
      await joinFiles(
        dir,
        [...(stream.init ? [stream.init] : []), ...stream.segments.map((s) => s.url)],
        joined,
      );
      try {
        scores.push(
          await measureQuality(rendition, joined, {
            ...quality,
            ffmpeg: options.tools.ffmpeg,
            ffprobe: options.tools.ffprobe,
            logger: options.logger,
            signal: options.signal,
          }),
        );
      } catch (err) {
        options.signal?.throwIfAborted();
        options.logger?.warn({ err, rendition: rendition.name }, 'could not measure PSNR/SSIM');
        const detail = err instanceof ProcessError ? err.stderrTail.trim().split('\n').pop() : undefined;
        scores.push({ rendition: rendition.name, error: (detail || (err as Error).message).slice(0, 200) });
      }
      await rm(joined, { force: true });
    }
  } finally {
    await rm(quality.tempDir, { recursive: true, force: true });
  }
  return scores;
}

/** Concatenates init and media segments into one playable file (one segment in memory at a time). */
async function joinFiles(dir: string, keys: string[], dest: string): Promise<void> {
  const out = await open(dest, 'w');
  try {
    for (const key of keys) await out.write(await readFile(path.join(dir, key)));
  } finally {
    await out.close();
  }
}

/** Size of every file under `dir`, by `/`-separated relative key. */
async function fileSizes(dir: string): Promise<Map<string, number>> {
  const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
  const stats = await Promise.all(files.map((f) => stat(f)));
  return new Map(files.map((f, i) => [path.relative(dir, f).split(path.sep).join('/'), stats[i]!.size]));
}
