import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { XMLParser } from 'fast-xml-parser';

const run = promisify(execFile);

export const mpdSchema = path.resolve(
  fileURLToPath(import.meta.url),
  '../../../../shared/xsd/DASH-MPD.local.xsd',
);

export interface MpdRepresentation {
  id: string;
  contentType: 'video' | 'audio';
  bandwidth: number;
  width?: number;
  height?: number;
  init: string;
  /** Segment URLs in order, relative to the manifest. */
  segments: string[];
  /** Segment durations in seconds. */
  durations: number[];
}

export interface ParsedMpd {
  type: string;
  duration: number;
  representations: MpdRepresentation[];
}

const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Parses a static MPD with SegmentTemplate + SegmentTimeline (what the packager writes) into plain data. */
export function parseMpd(xml: string): ParsedMpd {
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml) as {
    MPD: Record<string, unknown>;
  };
  const mpd = doc.MPD as { type: string; mediaPresentationDuration: string; Period: unknown };
  const reps: MpdRepresentation[] = [];
  for (const period of asArray(mpd.Period as Record<string, unknown> | Record<string, unknown>[])) {
    for (const set of asArray(period.AdaptationSet as Record<string, unknown>[] | Record<string, unknown>)) {
      // The seek-bar thumbnails' image track has sheets, not segments: checked by the QC's thumbnails check.
      if (set.contentType === 'image') continue;
      const contentType = set.contentType as 'video' | 'audio';
      for (const rep of asArray(set.Representation as Record<string, unknown>[] | Record<string, unknown>)) {
        const tpl = rep.SegmentTemplate as Record<string, unknown>;
        assert.ok(tpl, 'every representation has a SegmentTemplate');
        const timescale = Number(tpl.timescale);
        const startNumber = Number(tpl.startNumber ?? 1);
        const timeline = asArray(
          (tpl.SegmentTimeline as Record<string, unknown>).S as Record<string, string>[],
        );
        const durations: number[] = [];
        let end: number | undefined;
        for (const s of timeline) {
          // A segment that states its start begins where the one before it ended: no overlap, no gap.
          if (s.t !== undefined && end !== undefined) {
            assert.equal(
              Number(s.t),
              end,
              `${String(rep.id)}: segment ${durations.length + 1} starts where the last ended`,
            );
          }
          end = Number(s.t ?? end ?? 0);
          for (let i = 0; i <= Number(s.r ?? 0); i++) {
            durations.push(Number(s.d) / timescale);
            end += Number(s.d);
          }
        }
        const media = String(tpl.media);
        reps.push({
          id: String(rep.id),
          contentType,
          bandwidth: Number(rep.bandwidth),
          width: rep.width ? Number(rep.width) : set.width ? Number(set.width) : undefined,
          height: rep.height ? Number(rep.height) : set.height ? Number(set.height) : undefined,
          init: String(tpl.initialization),
          segments: durations.map((_, i) => media.replace('$Number$', String(startNumber + i))),
          durations,
        });
      }
    }
  }
  return { type: mpd.type, duration: parseIsoDuration(mpd.mediaPresentationDuration), representations: reps };
}

function parseIsoDuration(value: string): number {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$/.exec(value ?? '');
  if (!m) return NaN;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

export async function validateMpdSchema(mpdPath: string): Promise<void> {
  await run('xmllint', ['--noout', '--nonet', '--schema', mpdSchema, mpdPath]);
}

export interface PackageExpectations {
  /** Video heights expected, lowest first. */
  heights?: number[];
  audio?: boolean;
  segmentDuration?: number;
  /**
   * Seconds a segment may differ from the target beyond a tenth of it: the longest a source frame is shown, for
   * a variable frame rate kept as it is (no segment can start before the first frame after its boundary).
   */
  segmentSlack?: number;
  /** Decode every representation (init + all segments) with FFmpeg. Slower; on by default. */
  decode?: boolean;
}

/**
 * Checks a DASH package on local disk the way a player would meet it: the MPD validates against the
 * schema and parses, every referenced file exists, segment durations match the target (but the last),
 * video segment boundaries line up across renditions, and FFmpeg decodes init + segments of each one.
 */
export async function checkDashPackage(dir: string, expect: PackageExpectations = {}): Promise<ParsedMpd> {
  const mpdPath = path.join(dir, 'manifest.mpd');
  await validateMpdSchema(mpdPath);
  const mpd = parseMpd(await readFile(mpdPath, 'utf8'));
  assert.equal(mpd.type, 'static');
  const videos = mpd.representations
    .filter((r) => r.contentType === 'video')
    .sort((a, b) => a.height! - b.height!);
  const audios = mpd.representations.filter((r) => r.contentType === 'audio');
  if (expect.heights) {
    assert.deepEqual(
      videos.map((v) => Math.min(v.width!, v.height!)),
      expect.heights,
      'video representations (short side)',
    );
  }
  if (expect.audio !== undefined) assert.equal(audios.length, expect.audio ? 1 : 0, 'audio adaptation set');
  for (const rep of mpd.representations) {
    assert.ok(rep.bandwidth > 0, `bandwidth of ${rep.id}`);
    for (const file of [rep.init, ...rep.segments]) {
      assert.ok(!file.startsWith('/') && !/^[a-z]+:/i.test(file), `relative URL ${file}`);
      assert.ok(existsSync(path.join(dir, file)), `referenced file exists: ${file}`);
    }
    if (expect.segmentDuration) {
      rep.durations.slice(0, -1).forEach((d, i) => {
        assert.ok(
          Math.abs(d - expect.segmentDuration!) <= expect.segmentDuration! * 0.1 + (expect.segmentSlack ?? 0),
          `${rep.init}: segment ${i + 1} lasts ${d.toFixed(3)} s, target ${expect.segmentDuration} s`,
        );
      });
    }
  }
  for (const v of videos.slice(1)) {
    assert.equal(
      v.durations.length,
      videos[0]!.durations.length,
      'same number of segments in every rendition',
    );
    v.durations.forEach((d, i) =>
      assert.ok(Math.abs(d - videos[0]!.durations[i]!) < 0.002, `segment ${i + 1} aligned across renditions`),
    );
  }
  if (expect.decode !== false) {
    // Text tracks (WebVTT in fMP4) are no media FFmpeg decodes.
    for (const rep of mpd.representations) {
      if (rep.contentType === 'video' || rep.contentType === 'audio') await decodeRepresentation(dir, rep);
    }
  }
  return mpd;
}

/** Joins init + segments into one file and decodes it fully with FFmpeg; returns the decoded seconds. */
export async function decodeRepresentation(dir: string, rep: MpdRepresentation): Promise<void> {
  const tmp = await mkdtemp(path.join(tmpdir(), 'dvc-decode-'));
  try {
    const joined = await joinRepresentation(dir, rep, tmp);
    // Every frame at its own time: the null output's default constant rate would complain about a variable
    // frame rate's timestamps (as it does about the source's), which says nothing about the package.
    const { stderr } = await run('ffmpeg', [
      ...['-v', 'error', '-xerror', '-i', joined],
      ...['-fps_mode', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-'],
    ]);
    assert.equal(stderr.trim(), '', `FFmpeg decodes ${rep.init} and its segments without error`);
    if (rep.contentType === 'video') {
      // What every H.264 player expects: 8-bit 4:2:0 in limited (TV) range. A filter graph that lets a branch
      // negotiate the JPEG formats (yuvj420p) would flag the rungs full-range and players would show them
      // washed out or crushed.
      const { stdout } = await run('ffprobe', [
        ...['-v', 'error', '-select_streams', 'v:0', '-of', 'json'],
        ...['-show_entries', 'stream=pix_fmt,color_range', joined],
      ]);
      const [stream] = (JSON.parse(stdout) as { streams: { pix_fmt?: string; color_range?: string }[] })
        .streams;
      assert.equal(stream?.pix_fmt, 'yuv420p', `${rep.init}: pixel format`);
      assert.notEqual(stream?.color_range, 'pc', `${rep.init}: limited range`);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * A digest of a stream's coded packets (not their timing): equal for a source's audio and a package's audio
 * exactly when the package carries the source's stream as it was.
 */
export async function audioPacketsDigest(file: string): Promise<string> {
  const { stdout } = await run('ffmpeg', [
    '-v',
    'error',
    '-i',
    file,
    '-map',
    '0:a:0',
    '-c',
    'copy',
    '-f',
    'md5',
    '-',
  ]);
  return stdout.trim();
}

/** The package's audio (init + segments joined) as one file in `tmpDir`, for `audioPacketsDigest` and ffprobe. */
export async function joinRepresentation(
  dir: string,
  rep: MpdRepresentation,
  tmpDir: string,
): Promise<string> {
  const joined = path.join(tmpDir, `${rep.id}-joined.mp4`);
  const parts = await Promise.all([rep.init, ...rep.segments].map((f) => readFile(path.join(dir, f))));
  await writeFile(joined, Buffer.concat(parts));
  return joined;
}
