import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { encodeVideoChunk } from '../../src/pipeline/chunks/encode-chunk.js';
import { readChunkStarts } from '../../src/pipeline/chunks/chunk-starts.js';
import { canSplit, hasSeekIndex, planChunks, type ChunkSpan } from '../../src/pipeline/chunks/plan-chunks.js';
import { probeSource } from '../../src/pipeline/probe.js';
import { convertInChunks } from '../../src/pipeline/chunks/convert-in-chunks.js';
import type { TaskFailure } from '../../src/domain/failures.js';
import { convert, type ConversionResult } from '../../src/pipeline/convert.js';
import { describeFailures } from '../../src/domain/qc-report.js';
import { checkConversion } from '../../src/qc/check-conversion.js';
import { planEncode, type EncodeSettings } from '../../src/pipeline/plan.js';
import { defaultTools } from '../../src/pipeline/tools.js';
import { createLogger } from '../../src/process/logger.js';
import { generateClip } from '../helpers/media.js';
import { mediaInfo, testEncodeSettings } from '../helpers/media-info.js';
import { audioPacketsDigest, joinRepresentation, parseMpd } from '../helpers/package-check.js';
import { startS3Server } from '../helpers/s3-server.js';

const run = promisify(execFile);

describe('planChunks', () => {
  const plan = (duration: number, chunkSeconds = 12, segmentSeconds = 4) =>
    planChunks({ duration, segmentSeconds, chunkSeconds, minInputSeconds: 0 }).map(
      (c) => `${c.index}:${c.start}-${c.end}`,
    );

  test('whole segments per chunk, the last one taking the rest (shorter than a segment too)', () => {
    assert.deepEqual(plan(30), ['0:0-12', '1:12-24', '2:24-30']);
    assert.deepEqual(plan(25), ['0:0-12', '1:12-24', '2:24-25']);
    // 10 s chunks of 4 s segments: rounded to 3 segments (12 s).
    assert.deepEqual(plan(30, 10), ['0:0-12', '1:12-24', '2:24-30']);
    // Less than a segment asked for: one segment each.
    assert.deepEqual(plan(9, 1, 2), ['0:0-2', '1:2-4', '2:4-6', '3:6-8', '4:8-9']);
  });

  test('a remainder of a few frames joins the chunk before it: it may hold no video frame', () => {
    assert.deepEqual(plan(24.2), ['0:0-12', '1:12-24.2']);
  });

  test('not split: chunk_seconds 0, an input no longer than the minimum, or a single chunk', () => {
    assert.deepEqual(plan(30, 0), []);
    assert.deepEqual(plan(12), []);
    assert.deepEqual(plan(12.3), []);
    assert.deepEqual(
      planChunks({ duration: 300, segmentSeconds: 4, chunkSeconds: 60, minInputSeconds: 300 }),
      [],
    );
    assert.equal(
      planChunks({ duration: 301, segmentSeconds: 4, chunkSeconds: 60, minInputSeconds: 300 }).length,
      6,
    );
  });
});

describe('canSplit', () => {
  const settings: EncodeSettings = { ...testEncodeSettings };
  test('deinterlacing, a frame rate limit, HDR, a variable frame rate, a held last frame and MPEG-TS split; AVI, FLV or AV1 off the grid do not', () => {
    const ok = (media: ReturnType<typeof mediaInfo>, s = settings) => canSplit(planEncode(media, s), media);
    assert.deepEqual(ok(mediaInfo(1280, 720, { interlaced: true })), { ok: true });
    assert.deepEqual(ok(mediaInfo(1280, 720, { frameRate: 120 })), { ok: true });
    assert.deepEqual(ok(mediaInfo(1280, 720, { colorTransfer: 'smpte2084' })), { ok: true });
    assert.deepEqual(ok(mediaInfo(1280, 720, { variableFrameRate: true, frameRate: 27.3 })), { ok: true });
    // MPEG-TS splits without an index (its keyframes read from the whole file); AVI and FLV do not.
    const refused = (formatName: string) =>
      String((ok({ ...mediaInfo(1280, 720), formatName }) as { reason: string }).reason);
    assert.deepEqual(ok({ ...mediaInfo(1280, 720), formatName: 'mpegts' }), { ok: true });
    assert.match(refused('avi'), /\(avi\) gives its packets no presentation time/);
    assert.match(refused('flv'), /\(flv\) has no index/);
    const held = mediaInfo(1280, 720, { duration: 6, startTime: 0 });
    held.audio = { ...held.audio!, duration: 10, startTime: 0 };
    assert.deepEqual(ok(held), { ok: true }, 'the last chunk holds the last frame');
    const av1 = { ...settings, codecs: ['h264', 'av1'] as EncodeSettings['codecs'] };
    assert.deepEqual(ok(mediaInfo(1280, 720, { frameRate: 30 }), av1), { ok: true });
    assert.match(
      String((ok(mediaInfo(1280, 720, { frameRate: 29.97 }), av1) as { reason: string }).reason),
      /keyframes by count/,
    );
  });
  test('hasSeekIndex: MP4/MOV and Matroska/WebM, as FFprobe names them', () => {
    for (const name of ['mov,mp4,m4a,3gp,3g2,mj2', 'matroska,webm']) assert.equal(hasSeekIndex(name), true);
    for (const name of ['mpegts', 'avi', 'flv', 'mpeg']) assert.equal(hasSeekIndex(name), false);
  });
});

/** Video packets' presentation times, in order, to the microsecond. */
async function videoTimes(file: string): Promise<number[]> {
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file],
  ]);
  return (
    stdout
      .split('\n')
      .filter(Boolean)
      // MPEG-TS packets end their line with a comma (their side data).
      .map((l) => Math.round(Number(l.split(',')[0]) * 1e6) / 1e6)
      .sort((a, b) => a - b)
  );
}

/** A WebVTT time (hh:mm:ss.mmm) in seconds. */
function seconds(vttTime: string): number {
  const [h, m, s] = vttTime.split(':').map(Number);
  return Math.round((h! * 3600 + m! * 60 + s!) * 1000) / 1000;
}

/** Each representation's SegmentTimeline as the MPD writes it. */
function timelines(xml: string): string[] {
  return [...xml.matchAll(/<SegmentTimeline>[\s\S]*?<\/SegmentTimeline>/g)].map((m) =>
    m[0].replace(/\s+/g, ' '),
  );
}

describe('split and stitch (real FFmpeg): the package is the one a single run makes', () => {
  let root: string;
  const ctx = () => ({
    tools: defaultTools(),
    logger: createLogger('silent'),
    idleTimeoutMs: 60_000,
    maxRuntimeMs: 300_000,
    tempDir: path.join(root, 'tmp'),
  });
  const settings: EncodeSettings = {
    ...testEncodeSettings,
    preset: 'ultrafast',
    segmentDuration: 2,
    formats: ['dash', 'hls'],
    ladder: [
      { height: 90, bitrate: 150_000 },
      { height: 180, bitrate: 300_000 },
    ],
  };
  const limits = { maxDurationSeconds: 3600, maxPixels: 1e8, maxFrameRate: 240 };

  /** `video` and `audio` (lavfi sources) in H.264 with keyframes 300 frames apart, and AAC. */
  const sparseKeyframesClip = (file: string, video: string, audio: string) =>
    run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', video, '-f', 'lavfi', '-i', audio],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '300', '-pix_fmt', 'yuv420p', '-c:a', 'aac', file],
    ]);

  let sparse: Promise<string> | undefined;
  /** 13 s at 29.83 fps (not a whole number of frames per segment) with keyframes 10 s apart only, made once. */
  const sparseClip = () =>
    (sparse ??= (async () => {
      const input = path.join(root, 'sparse-keyframes.mp4');
      await sparseKeyframesClip(
        input,
        'testsrc2=size=320x180:rate=179/6:duration=13',
        'sine=frequency=440:sample_rate=48000:duration=13',
      );
      return input;
    })());

  let ffmpegLog: string;
  let loggedFfmpeg: string;
  let ffprobeLog: string;
  let loggedFfprobe: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-chunks-'));
    await mkdir(path.join(root, 'tmp'));
    // FFmpeg that first writes its command line down: what the stitch ran, to show it decodes no video.
    ffmpegLog = path.join(root, 'ffmpeg-runs.log');
    loggedFfmpeg = path.join(root, 'ffmpeg-logged');
    await writeFile(loggedFfmpeg, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${ffmpegLog}'\nexec ffmpeg "$@"\n`, {
      mode: 0o755,
    });
    // And FFprobe: what was probed, and when.
    ffprobeLog = path.join(root, 'ffprobe-runs.log');
    loggedFfprobe = path.join(root, 'ffprobe-logged');
    await writeFile(loggedFfprobe, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${ffprobeLog}'\nexec ffprobe "$@"\n`, {
      mode: 0o755,
    });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  /**
   * The split run of `input` against the source (every frame once, at its time; each segment starting at the
   * first frame of its time) and, when given, against one run of it (the same timeline, frames, audio and
   * thumbnails).
   */
  async function checkSplit(
    name: string,
    input: string,
    chunkSeconds: number,
    one?: ConversionResult,
    options: Partial<EncodeSettings> = {},
  ) {
    await writeFile(ffmpegLog, '');
    await writeFile(ffprobeLog, '');
    const split = await convertInChunks(
      input,
      path.join(root, `${name}-split`),
      { ...ctx(), tools: defaultTools({ ffmpeg: loggedFfmpeg, ffprobe: loggedFfprobe }) },
      { settings: { ...settings, ...options }, limits, chunkSeconds, parallel: 2 },
    );
    // The stitch (from its first join on) reads neither the input nor a joined rendition: the chunks' encodes
    // made the poster candidates and the thumbnails, the stitch only tiles the small frames.
    const runs = (await readFile(ffmpegLog, 'utf8')).split('\n').filter(Boolean);
    const stitch = runs.slice(runs.findIndex((r) => r.includes('-f concat')));
    assert.ok(stitch.length < runs.length, 'the stitch joins after the chunks');
    const reads = (r: string) => [...r.matchAll(/-i (\S+)/g)].map((m) => m[1]!);
    assert.deepEqual(
      stitch
        .flatMap(reads)
        // The joins read their lists (packets copied, nothing decoded).
        .filter((i) => i.includes(input) || (i.includes('/joined/') && !i.endsWith('.ffconcat'))),
      [],
      'the stitch decodes no video',
    );
    // The join takes the first frame times the chunks' encodes reported.
    const probes = (await readFile(ffprobeLog, 'utf8')).split('\n').filter(Boolean);
    assert.deepEqual(
      probes.filter((r) => r.includes(`${name}-split/chunks/`) && r.includes('-read_intervals')),
      [],
      "no chunk file probed for its first frame (a variable frame rate's last chunk is, for its end)",
    );
    if (split.plan.thumbnails) {
      assert.equal(stitch.filter((r) => r.includes('tile=')).length, 1, 'the sheets tiled once');
      const thumbs = split.thumbnails!;
      const perSheet = thumbs.plan.columns * thumbs.plan.rows;
      assert.equal(
        thumbs.sheets.length,
        Math.ceil(thumbs.times.length / perSheet),
        'every sheet full but the last',
      );
      const vtt = await readFile(path.join(split.package.dir, thumbs.vtt), 'utf8');
      const cues = [...vtt.matchAll(/([\d:.]+) --> ([\d:.]+)/g)].map((m) => [seconds(m[1]!), seconds(m[2]!)]);
      assert.equal(cues.length, thumbs.times.length);
      assert.equal(cues[0]![0], 0, 'the cues start at 0');
      cues.slice(1).forEach(([start], k) => assert.equal(start, cues[k]![1], 'no gap between cues'));
      assert.ok(cues.at(-1)![1]! >= split.media.duration - 1e-3, 'the cues reach the end');
    }
    const mpd = (r: ConversionResult) => readFile(path.join(r.package.dir, r.package.dashManifest!), 'utf8');
    const splitXml = await mpd(split);
    const oneXml = one && (await mpd(one));
    if (one && oneXml) {
      assert.deepEqual(
        timelines(splitXml),
        timelines(oneXml),
        'the same segment timeline in every representation',
      );
      assert.deepEqual([...split.package.files].sort(), [...one.package.files].sort(), 'the same files');
      assert.deepEqual(split.thumbnails?.times, one.thumbnails?.times, 'thumbnails at the same times');
    }

    // Times from the video's first frame, as the package has them.
    const fromFirst = (times: number[]) => times.map((t) => Math.round((t - times[0]!) * 1e6) / 1e6);
    const segment = (t: number) => Math.floor(t / settings.segmentDuration + 1e-6);
    const reps = parseMpd(splitXml).representations;
    const oneReps = oneXml ? parseMpd(oneXml).representations : [];
    const tmp = await mkdtemp(path.join(root, 'joined-'));
    const tmpOne = await mkdtemp(path.join(root, 'joined-one-'));
    for (const [i, rep] of reps.entries()) {
      const file = await joinRepresentation(split.package.dir, rep, tmp);
      const oneFile = one && (await joinRepresentation(one.package.dir, oneReps[i]!, tmpOne));
      if (rep.contentType === 'audio') {
        if (oneFile)
          assert.equal(await audioPacketsDigest(file), await audioPacketsDigest(oneFile), 'the same audio');
        continue;
      }
      const times = fromFirst(await videoTimes(file));
      // The source's frames; after a frame rate limit or with a held last frame, those one run makes of them.
      const made = split.plan.frameRateLimit || split.plan.holdLastFrame;
      const source = fromFirst(await videoTimes(made ? oneFile! : input));
      assert.equal(times.length, source.length, `${rep.id}: as many frames as the source`);
      // Every frame once, at the source's time: none lost or doubled at a join.
      const off = times.filter((t, k) => Math.abs(t - source[k]!) > 1e-3);
      assert.deepEqual(off, [], `${rep.id}: frames at the source's times`);
      if (oneFile)
        assert.deepEqual(times, fromFirst(await videoTimes(oneFile)), `${rep.id}: as one run has them`);
      const segmentStarts = source.filter((t, k) => k === 0 || segment(t) > segment(source[k - 1]!));
      const starts = rep.durations.map((_, k) => rep.durations.slice(0, k).reduce((a, b) => a + b, 0));
      assert.deepEqual(
        starts.map((t) => t.toFixed(3)),
        segmentStarts.map((t) => t.toFixed(3)),
        `${rep.id}: each segment starts at the first frame of its time`,
      );
    }
    return split;
  }

  test('CFR with keyframes 10 s apart and a last chunk shorter than a segment', async () => {
    // 13 s at 29.83 fps, keyframes at 0 and 10.06 s only: chunks start at 4, 8 and 12 s, far from any keyframe
    // (4 s decoded and dropped before the second), and the last chunk is 1 s of a 2 s segment.
    const input = await sparseClip();
    const { stdout } = await run('ffprobe', [
      ...['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0'],
      input,
    ]);
    const keyframes = stdout
      .split('\n')
      .filter((l) => l.includes(',K'))
      .map((l) => Number(l.split(',')[0]));
    assert.deepEqual(
      keyframes.map((t) => t.toFixed(2)),
      ['0.00', '10.06'],
      'the source has keyframes 10 s apart',
    );
    const one = await convert(input, path.join(root, 'sparse-one'), ctx(), { settings, limits });
    const split = await checkSplit('sparse', input, 4, one);
    assert.equal(split.package.files.filter((f) => /video_180p\/\d+\.m4s$/.test(f)).length, 7);
    // The starts read once from the index; each chunk seeks straight to its keyframe, probing nothing.
    const probes = (await readFile(ffprobeLog, 'utf8')).split('\n').filter(Boolean);
    assert.equal(probes.filter((r) => r.includes('-read_intervals')).length, 1, 'one read of the starts');
    const seeks = (await readFile(ffmpegLog, 'utf8'))
      .split('\n')
      .flatMap((r) => /-ss (\S+)/.exec(r)?.[1] ?? [])
      .map((t) => Number(t).toFixed(2));
    assert.deepEqual(
      [...new Set(seeks)].sort(),
      ['0.00', '10.06'],
      'each chunk decodes from the keyframe at or before its start',
    );
  });

  test('MPEG-TS (no seek index) with B-frames and keyframes off the chunk starts', async () => {
    // 13 s at 30 fps, keyframes 5 s apart (none at a chunk's start), B-frames: FFmpeg's MPEG-TS seek lands near a
    // time, not on the keyframe before it, so each chunk seeks a second before the keyframe it decodes from.
    const tsClip = async (name: string, audioDelay: number) => {
      const file = path.join(root, name);
      await run('ffmpeg', [
        ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30:duration=13'],
        ...[
          '-itsoffset',
          String(audioDelay),
          '-f',
          'lavfi',
          '-i',
          'sine=frequency=440:sample_rate=48000:duration=13',
        ],
        ...['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '3', '-g', '150', '-pix_fmt', 'yuv420p'],
        ...['-c:a', 'aac', '-f', 'mpegts', file],
      ]);
      return file;
    };
    // The audio from just after the video's first frame: AAC's priming otherwise starts it 21 ms before, and one
    // run then repeats its first frame (its output starts with the audio), which the split, exact, does not.
    const input = await tsClip('sparse-keyframes.ts', 0.05);
    const { stdout } = await run('ffprobe', [
      ...['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,dts_time,flags'],
      ...['-of', 'csv=p=0', input],
    ]);
    const packets = stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(','));
    assert.ok(
      packets.some(([pts, dts]) => pts !== dts),
      'B-frames: decoding times precede presentation times',
    );
    const first = Math.min(...packets.map(([pts]) => Number(pts)));
    const keyframes = packets
      .filter(([, , flags]) => flags!.includes('K'))
      .map(([pts]) => Math.round((Number(pts) - first) * 1e6) / 1e6);
    assert.deepEqual(keyframes, [0, 5, 10], 'keyframes 5 s apart, from the first frame');
    const one = await convert(input, path.join(root, 'ts-one'), ctx(), { settings, limits });
    const split = await checkSplit('ts', input, 4, one);
    assert.equal(split.media.formatName, 'mpegts');
    // The starts read once, from the whole file's packets (no seek in it).
    const probes = (await readFile(ffprobeLog, 'utf8')).split('\n').filter(Boolean);
    const reads = probes.filter((r) => r.includes('packet=pts_time,dts_time,pos,flags'));
    assert.equal(reads.length, 1, 'one read of the starts');
    assert.ok(!reads[0]!.includes('-read_intervals'), 'the whole file read');
    // Chunks start at 4, 8 and 12 s: each seeks a second before the keyframe at or before its start (0, 5, 10).
    const seeks = (await readFile(ffmpegLog, 'utf8'))
      .split('\n')
      .flatMap((r) => /-ss (\S+)/.exec(r)?.[1] ?? [])
      .map(Number);
    assert.deepEqual(
      seeks.map((t) => t.toFixed(3)).sort(),
      ['0.000', '0.000', '4.000', '9.000'],
      'each chunk seeks before its keyframe',
    );
    // The audio 21 ms ahead (FFmpeg then starts a chunk's timeline at its video): every source frame once, at its time.
    await checkSplit('ts-audio-first', await tsClip('audio-first.ts', 0), 4);
  });

  test('MPEG-TS limited to 25 fps: each chunk decodes from the keyframe before its preroll; one without it reads it', async () => {
    // 50 fps, keyframes every 1.8 s (0, 1.8, 3.6, 5.4): the ones before the 2 s and 4 s starts are within the
    // half second the frame rate limit decodes before a start, so the chunks decode from the keyframe before.
    const input = path.join(root, 'fifty.ts');
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=50:duration=6'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '3', '-g', '90', '-pix_fmt', 'yuv420p'],
      ...['-f', 'mpegts', input],
    ]);
    const options = { maxFrameRate: 25, thumbnails: false, ladder: [{ height: 180, bitrate: 300_000 }] };
    const one = await convert(input, path.join(root, 'fifty-one'), ctx(), {
      settings: { ...settings, ...options },
      limits,
    });
    assert.equal(one.plan.frameRateLimit, 25);
    await checkSplit('fifty', input, 2, one, options);
    const seeks = (await readFile(ffmpegLog, 'utf8'))
      .split('\n')
      .flatMap((r) => /-ss (\S+)/.exec(r)?.[1] ?? [])
      .map((t) => Number(t).toFixed(3));
    assert.deepEqual(seeks.sort(), ['0.000', '0.000', '0.800'], 'a second before 0, 0 and 1.8 s');

    // The same chunk without what the starts' read gives (the queue's fallback): it reads them from the file's
    // start and encodes the same frames.
    const { media } = await probeSource(input, { ffprobe: 'ffprobe', ffmpeg: 'ffmpeg' });
    const plan = planEncode(media, { ...settings, ...options });
    const planned = planChunks({
      duration: media.duration,
      segmentSeconds: 2,
      chunkSeconds: 2,
      minInputSeconds: 0,
    });
    const [read] = await readChunkStarts({
      inputPath: input,
      media,
      plan,
      chunks: [planned[2]!],
      ctx: ctx(),
    });
    assert.deepEqual(
      [read!.keyframe, read!.prerollKeyframe].map((t) => t?.toFixed(3)),
      ['3.600', '1.800'],
    );
    await writeFile(ffprobeLog, '');
    const encode = async (chunk: ChunkSpan, dir: string) =>
      (
        await encodeVideoChunk({
          input,
          media,
          plan,
          chunk,
          outDir: path.join(root, dir),
          ctx: { ...ctx(), tools: defaultTools({ ffmpeg: loggedFfmpeg, ffprobe: loggedFfprobe }) },
        })
      ).files[plan.renditions[0]!.name]!;
    const [bare, annotated] = [await encode(planned[2]!, 'fifty-bare'), await encode(read!, 'fifty-read')];
    const probes = (await readFile(ffprobeLog, 'utf8')).split('\n').filter(Boolean);
    assert.equal(
      probes.filter((r) => /-read_intervals %\d/.test(r)).length,
      1,
      'the bare chunk read from the top',
    );
    const packets = async (file: string) =>
      (
        await run('ffprobe', [
          ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts,dts,duration,flags'],
          ...['-of', 'csv=p=0', file],
        ])
      ).stdout;
    assert.equal(await packets(bare), await packets(annotated), 'the same frames, times and keyframes');
  });

  test('MPEG-TS captures put end to end (timestamps that start again) are encoded in one run, which corrects them', async () => {
    const part = path.join(root, 'capture.ts');
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30:duration=5'],
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=5'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-pix_fmt', 'yuv420p', '-c:a', 'aac', part],
    ]);
    const input = path.join(root, 'captures.ts');
    await writeFile(input, Buffer.concat([await readFile(part), await readFile(part)]));
    await writeFile(ffmpegLog, '');
    const result = await convertInChunks(
      input,
      path.join(root, 'captures-split'),
      { ...ctx(), tools: defaultTools({ ffmpeg: loggedFfmpeg, ffprobe: loggedFfprobe }) },
      { settings, limits, chunkSeconds: 2, parallel: 2 },
    );
    const runs = (await readFile(ffmpegLog, 'utf8')).split('\n').filter(Boolean);
    assert.deepEqual(
      runs.filter((r) => r.includes('-copyts')),
      [],
      'no chunk encoded',
    );
    assert.ok(result.package.files.some((f) => f.endsWith('.mpd')));
  });

  test('MPEG-2 video in MPEG-TS (a broadcast recording): open GOPs, B-frames before each keyframe split exactly', async () => {
    // Open GOPs: the B-frames after an I-frame in decoding order are shown before it and need the GOP before.
    const input = path.join(root, 'broadcast.ts');
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=9'],
      ...['-itsoffset', '0.05', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=9'],
      ...['-c:v', 'mpeg2video', '-bf', '2', '-g', '60', '-q:v', '4', '-c:a', 'mp2', '-f', 'mpegts', input],
    ]);
    const options = { thumbnails: false, ladder: [{ height: 180, bitrate: 300_000 }] };
    const one = await convert(input, path.join(root, 'broadcast-one'), ctx(), {
      settings: { ...settings, ...options },
      limits,
    });
    await checkSplit('broadcast', input, 2, one, options);
  });

  test('an interlaced 50 fps source, deinterlaced and limited to 25 fps, splits as one run encodes it', async () => {
    const input = path.join(root, 'interlaced.mp4');
    await run('ffmpeg', [
      ...[
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=320x180:rate=50:duration=5',
        '-vf',
        'setfield=tff',
      ],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-flags', '+ildct+ilme', '-pix_fmt', 'yuv420p', input],
    ]);
    const options = { maxFrameRate: 25, thumbnails: false, ladder: [{ height: 180, bitrate: 300_000 }] };
    const one = await convert(input, path.join(root, 'interlaced-one'), ctx(), {
      settings: { ...settings, ...options },
      limits,
    });
    assert.ok(one.plan.deinterlace && one.plan.frameRateLimit === 25, 'deinterlaced and limited');
    await checkSplit('interlaced', input, 2, one, options);
  });

  test('every audio track and the subtitles (embedded and a sidecar) are in the stitched package as in one run', async () => {
    const input = path.join(root, 'tracks.mp4');
    const embedded = path.join(root, 'embedded.srt');
    await writeFile(
      embedded,
      '1\n00:00:00,500 --> 00:00:02,000\nHello\n\n2\n00:00:02,500 --> 00:00:03,500\nAgain\n',
    );
    const sidecar = path.join(root, 'tracks.fr.srt');
    await writeFile(
      sidecar,
      '1\n00:00:00,200 --> 00:00:01,800\nBonjour\n\n2\n00:00:03,000 --> 00:00:03,900\nAu revoir\n',
    );
    const tone = (f: number) => ['-f', 'lavfi', '-i', `sine=frequency=${f}:sample_rate=48000:duration=4`];
    await run('ffmpeg', [
      ...[
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=320x180:rate=25:duration=4',
        ...tone(440),
        ...tone(660),
      ],
      ...['-i', embedded, '-map', '0', '-map', '1', '-map', '2', '-map', '3'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-c:s', 'mov_text'],
      ...[
        '-metadata:s:s:0',
        'language=eng',
        '-metadata:s:a:0',
        'language=eng',
        '-metadata:s:a:1',
        'language=fre',
      ],
      input,
    ]);
    const options = {
      thumbnails: false,
      segmentDuration: 1,
      ladder: [{ height: 180, bitrate: 300_000 }],
      subtitles: [{ filename: 'tracks.fr.srt', language: 'fr' }],
    };
    const subtitleFiles = { 'tracks.fr.srt': sidecar };
    const one = await convert(input, path.join(root, 'tracks-one'), ctx(), {
      settings: { ...settings, ...options },
      limits,
      subtitleFiles,
    });
    const split = await convertInChunks(input, path.join(root, 'tracks-split'), ctx(), {
      settings: { ...settings, ...options },
      limits,
      subtitleFiles,
      chunkSeconds: 2,
    });
    assert.equal(one.plan.audioTracks.length, 2);
    assert.equal(one.plan.textTracks.length, 2);
    assert.deepEqual([...split.package.files].sort(), [...one.package.files].sort(), 'the same files');
    // The same manifests but for the bitrates: each chunk's encoder starts its rate control afresh.
    const manifest = async (r: ConversionResult, name: string) =>
      (await readFile(path.join(r.package.dir, name), 'utf8')).replace(
        /(bandwidth|BANDWIDTH)="?=?\d+"?/g,
        '$1',
      );
    assert.equal(await manifest(split, 'manifest.mpd'), await manifest(one, 'manifest.mpd'), 'the same MPD');
    // The packager lists the media of the HLS master in the order its streams end.
    const lines = async (r: ConversionResult) => (await manifest(r, 'master.m3u8')).split('\n').sort();
    assert.deepEqual(await lines(split), await lines(one), 'the same HLS master');
  });

  test('encryption: the stitched package is encrypted as one run encrypts it, the key only in the packager', async () => {
    const input = await generateClip({ width: 320, height: 180, seconds: 3, audio: true });
    const keyId = randomBytes(16).toString('hex');
    const key = randomBytes(16).toString('hex');
    const split = await convertInChunks(input, path.join(root, 'locked'), ctx(), {
      settings: {
        ...settings,
        segmentDuration: 1,
        thumbnails: false,
        ladder: [{ height: 180, bitrate: 300_000 }],
      },
      limits,
      chunkSeconds: 1,
      encryption: { scheme: 'cbcs', keys: [{ label: 'default', keyId, key }], systems: [] },
    });
    const xml = await readFile(path.join(split.package.dir, split.package.dashManifest!), 'utf8');
    const kid = `${keyId.slice(0, 8)}-${keyId.slice(8, 12)}-${keyId.slice(12, 16)}-${keyId.slice(16, 20)}-${keyId.slice(20)}`;
    assert.equal(
      xml.match(new RegExp(`cenc:default_KID="${kid}"`, 'g'))?.length,
      2,
      'video and audio encrypted',
    );
    for (const file of split.package.files) {
      const body = await readFile(path.join(split.package.dir, file));
      assert.ok(!body.includes(Buffer.from(key, 'hex')) && !body.includes(key), `${file} holds no key`);
    }
  });

  test('a variable frame rate source keeps every frame at its own time across the joins', async () => {
    // 30 fps for 2 s, then every third frame (10 fps), then 30 fps again: irregular spacing at the joins.
    const input = path.join(root, 'vfr.mp4');
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30:duration=9'],
      ...['-vf', `select='lt(n\\,60)+gt(n\\,180)+not(mod(n\\,3))'`, '-fps_mode', 'vfr'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-pix_fmt', 'yuv420p', input],
    ]);
    const one = await convert(input, path.join(root, 'vfr-one'), ctx(), { settings, limits });
    const split = await checkSplit('vfr', input, 2, one);
    assert.ok(split.plan.keepFrameTiming, 'planned as a variable frame rate');
  });

  test('video that ends before the audio: the last chunk holds its last frame to the end, as one run does', async () => {
    // 10 s of video (keyframes 10 s apart) and 13 s of audio: the chunks divide the 10 s of video, the last
    // one reads to the end and holds the last frame for 3 s.
    const input = path.join(root, 'held.mp4');
    await sparseKeyframesClip(
      input,
      'testsrc2=size=320x180:rate=30:duration=10',
      'sine=frequency=440:sample_rate=48000:duration=13',
    );
    const one = await convert(input, path.join(root, 'held-one'), ctx(), { settings, limits });
    assert.ok(one.plan.holdLastFrame! > 2.9, 'the last frame held for about 3 s');
    const split = await checkSplit('held', input, 4, one);
    // Three chunks (0–4, 4–8, 8–10 s), none past the video's end.
    const encodes = (await readFile(ffmpegLog, 'utf8')).split('\n').filter((r) => /-ss \S+/.test(r));
    assert.equal(encodes.length, 3, 'one encode per chunk of the video');
    const mpd = parseMpd(await readFile(path.join(split.package.dir, split.package.dashManifest!), 'utf8'));
    const video = mpd.representations.find((r) => r.contentType === 'video')!;
    const total = video.durations.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 13) < 0.1, `the video lasts as long as the audio (${total} s)`);
    // QC checks the stitched package as one run's: the video held to the audio's end.
    const report = await checkConversion({
      result: split,
      inputPath: input,
      workDir: path.join(root, 'held-split'),
      ctx: ctx(),
      quality: false,
    });
    assert.ok(report.passed, describeFailures(report));
  });

  test('a chunk read from a presigned URL is the chunk read from the file, and the URL is never on a command line', async () => {
    const input = await sparseClip();
    const s3 = await startS3Server();
    try {
      const bucket = await s3.createBucket('chunks');
      await s3.putFile(bucket, 'in/sparse.mp4', input);
      const url = await getSignedUrl(
        s3.client,
        new GetObjectCommand({ Bucket: bucket, Key: 'in/sparse.mp4' }),
        {
          expiresIn: 600,
        },
      );
      assert.match(url, /X-Amz-Signature=/);
      const { media } = await probeSource(input, { ffprobe: 'ffprobe', ffmpeg: 'ffmpeg' });
      const plan = planEncode(media, settings);
      const chunk = planChunks({
        duration: media.duration,
        segmentSeconds: 2,
        chunkSeconds: 4,
        minInputSeconds: 0,
      })[1]!;
      const lines: string[] = [];
      const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
      const encodeFrom = async (from: string, dir: string, log = ctx().logger) =>
        (
          await encodeVideoChunk({
            input: from,
            media,
            plan,
            chunk,
            outDir: path.join(root, dir),
            ctx: { ...ctx(), logger: log },
          })
        ).files;
      const [viaUrl, local] = [
        await encodeFrom(url, 'from-url', logger),
        await encodeFrom(input, 'from-file'),
      ];
      // x264's threads make the last frames' bits differ between two runs on one input now and then: the
      // packets' times and keyframes must be the same, and the pictures those of the same frames.
      for (const r of plan.renditions) {
        const packets = async (file: string) =>
          (
            await run('ffprobe', [
              ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts,dts,duration,flags'],
              ...['-of', 'csv=p=0', file],
            ])
          ).stdout;
        const [a, b] = [viaUrl[r.name]!, local[r.name]!];
        assert.equal(await packets(a), await packets(b), `${r.name}: the same packet times and keyframes`);
        const psnr = await run('ffmpeg', ['-i', a, '-i', b, '-lavfi', 'psnr', '-f', 'null', '-']);
        const min = Number(/min:([\d.]+|inf)/.exec(psnr.stderr)?.[1]?.replace('inf', 'Infinity'));
        // Two encodes of the same frames: ≥ 38 dB at their worst; one frame apart: about 20 dB.
        assert.ok(min >= 30, `${r.name}: the same pictures (PSNR at worst ${min} dB)`);
      }
      const spawned = lines.filter((l) => l.includes('"spawn"'));
      assert.ok(
        spawned.some((l) => l.includes('http://127.0.0.1:')),
        'FFmpeg read a local relay',
      );
      assert.deepEqual(
        lines.filter((l) => l.includes('X-Amz-') || l.includes(s3.endpoint)),
        [],
        'no log line holds the signed URL',
      );
      // A URL the store refuses (here a key that is not there; an expired signature alike): the store's
      // failure, retried, not the input's; and the reason holds no URL.
      const missing = await getSignedUrl(
        s3.client,
        new GetObjectCommand({ Bucket: bucket, Key: 'in/gone.mp4' }),
      );
      await assert.rejects(encodeFrom(missing, 'from-missing'), (err: TaskFailure) => {
        assert.equal(err.code, 'storage_error');
        assert.equal(err.message, 'the input could not be read from the storage (HTTP 404)');
        return true;
      });
    } finally {
      await s3.stop();
    }
  });
});
