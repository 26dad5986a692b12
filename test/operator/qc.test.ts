import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, copyFile, cp, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/process/logger.js';
import { convert, type ConversionResult } from '../../src/pipeline/convert.js';
import { defaultTools } from '../../src/pipeline/tools.js';
import { checkConversion } from '../../src/qc/check-conversion.js';
import { spansFrom } from '../../src/qc/source-durations.js';
import { describeFailures, type QcReport } from '../../src/domain/qc-report.js';
import { generateClip, makeHdrClip, makeLosslessPattern } from '../helpers/media.js';
import { rejectingXmllint } from '../helpers/rejecting-xmllint.js';
import { parseMpd } from '../helpers/package-check.js';
import { getJson, startTestService, submit, waitForFinal } from '../helpers/service.js';

const run = promisify(execFile);
const failed = (report: QcReport) => report.checks.filter((c) => !c.passed).map((c) => c.name);

describe('QC: the package checker', () => {
  let root: string;
  let input: string;
  let result: ConversionResult;
  const ctx = {
    tools: defaultTools(),
    logger: createLogger('silent'),
    idleTimeoutMs: 60_000,
    maxRuntimeMs: 300_000,
    tempDir: tmpdir(),
  };

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-qc-'));
    input = await generateClip({ width: 640, height: 360, seconds: 4, audio: true });
    const config = loadConfig({
      X264_PRESET: 'ultrafast',
      LADDER: '180:300k,360:800k',
      SEGMENT_DURATION: '2',
    });
    result = await convert(input, path.join(root, 'work'), ctx, {
      settings: config.encode,
      limits: config.limits,
    });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A copy of the package to break, and the conversion result pointing at it. */
  let copies = 0;
  const copyOfPackage = async () => {
    const dir = path.join(root, `copy-${++copies}`);
    await cp(result.package.dir, dir, { recursive: true });
    return { dir, result: { ...result, package: { ...result.package, dir } } };
  };

  test('a sound package passes every check, with PSNR and SSIM per rendition', async () => {
    const report = await checkConversion({
      result,
      inputPath: input,
      workDir: path.join(root, 'qc-work'),
      ctx,
      quality: true,
    });
    assert.deepEqual(failed(report), [], describeFailures(report));
    assert.equal(report.passed, true);
    assert.equal(report.checks.length, 8);
    assert.deepEqual(
      report.quality?.map((q) => q.rendition),
      ['video_180p', 'video_360p'],
    );
    for (const q of report.quality ?? []) {
      assert.ok(q.psnr! > 30 && q.psnr! < 100, `PSNR of ${q.rendition}: ${q.psnr}`);
      assert.ok(q.ssim! > 0.9 && q.ssim! <= 1, `SSIM of ${q.rendition}: ${q.ssim}`);
    }
  });

  test('an HDR source: PSNR and SSIM against the source tone-mapped as the encoder maps it', async () => {
    const sdr = await makeLosslessPattern(path.join(root, 'sdr.mkv'), 640, 360, 2);
    const hdr = await makeHdrClip(sdr, path.join(root, 'hlg.mp4'), 'arib-std-b67');
    const config = loadConfig({ X264_PRESET: 'ultrafast', LADDER: '180:300k,360:800k' });
    const converted = await convert(hdr, path.join(root, 'work-hdr'), ctx, {
      settings: config.encode,
      limits: config.limits,
    });
    assert.equal(converted.plan.toneMap, true);
    const report = await checkConversion({
      result: converted,
      inputPath: hdr,
      workDir: path.join(root, 'qc-hdr'),
      ctx,
      quality: true,
    });
    assert.deepEqual(failed(report), [], describeFailures(report));
    // Against the untouched HLG signal the rungs would score about 16 dB.
    for (const q of report.quality ?? []) assert.ok(q.psnr! > 30, `PSNR of ${q.rendition}: ${q.psnr}`);
    assert.equal(report.quality?.length, 2);
  });

  test('a deleted segment is caught and named', async () => {
    const copy = await copyOfPackage();
    await rm(path.join(copy.dir, 'video_180p/2.m4s'));
    const report = await checkConversion({
      result: copy.result,
      inputPath: input,
      workDir: root,
      ctx,
      quality: false,
    });
    assert.equal(report.passed, false);
    assert.deepEqual(failed(report), ['segments_exist']);
    assert.match(describeFailures(report), /segments_exist: missing: video_180p\/2\.m4s/);
  });

  test('an empty segment and a playlist pointing outside the package are caught', async () => {
    const copy = await copyOfPackage();
    await writeFile(path.join(copy.dir, 'audio/1.m4s'), '');
    const playlist = path.join(copy.dir, 'video_360p/playlist.m3u8');
    await writeFile(
      playlist,
      (await readFile(playlist, 'utf8')).replace(/^2\.m4s$/m, '../../elsewhere/2.m4s'),
    );
    const report = await checkConversion({
      result: copy.result,
      inputPath: input,
      workDir: root,
      ctx,
      quality: false,
    });
    const detail = report.checks.find((c) => c.name === 'segments_exist')!.detail;
    assert.match(detail, /empty: audio\/1\.m4s/);
    assert.match(detail, /outside the package: \.\.\/\.\.\/elsewhere\/2\.m4s/);
  });

  test('shifted segment boundaries and wrong durations are caught', async () => {
    const copy = await copyOfPackage();
    const mpdPath = path.join(copy.dir, 'manifest.mpd');
    const mpd = await readFile(mpdPath, 'utf8');
    // Make the first video segment of the 360p rendition 1 s longer (its timescale is 15360).
    const start = mpd.indexOf('video_360p/init.mp4');
    const at = mpd.indexOf('<S ', start);
    const end = mpd.indexOf('/>', at);
    const entry = mpd.slice(at, end);
    const d = Number(/d="(\d+)"/.exec(entry)![1]);
    await writeFile(
      mpdPath,
      mpd.slice(0, at) + entry.replace(/d="\d+"/, `d="${d + 15360}"`) + mpd.slice(end),
    );
    const report = await checkConversion({
      result: copy.result,
      inputPath: input,
      workDir: root,
      ctx,
      quality: false,
    });
    const names = failed(report);
    for (const name of ['segment_alignment', 'segment_durations', 'av_durations'] as const)
      assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
    assert.match(describeFailures(report), /segment 2 starts at 3\.000 s in/);
  });

  test('an MPD that breaks the MPEG-DASH schema is caught', async () => {
    const copy = await copyOfPackage();
    const mpdPath = path.join(copy.dir, 'manifest.mpd');
    const mpd = await readFile(mpdPath, 'utf8');
    await writeFile(mpdPath, mpd.replace(/minBufferTime="[^"]+"/, 'minBufferTime="two seconds"'));
    const report = await checkConversion({
      result: copy.result,
      inputPath: input,
      workDir: root,
      ctx,
      quality: false,
    });
    assert.deepEqual(failed(report), ['mpd_schema']);
    assert.match(describeFailures(report), /minBufferTime/);
    assert.doesNotMatch(describeFailures(report), new RegExp(root), 'no local paths in the reason');
  });

  test('a missing rendition and a missing audio stream are caught', async () => {
    const copy = await copyOfPackage();
    const master = path.join(copy.dir, 'master.m3u8');
    const text = await readFile(master, 'utf8');
    await writeFile(
      master,
      text
        .split('\n')
        .filter((l, i, all) => !l.includes('video_180p') && !(all[i + 1] ?? '').includes('video_180p'))
        .filter((l) => !l.startsWith('#EXT-X-MEDIA'))
        .join('\n'),
    );
    const report = await checkConversion({
      result: copy.result,
      inputPath: input,
      workDir: root,
      ctx,
      quality: false,
    });
    const detail = report.checks.find((c) => c.name === 'representations')!;
    assert.equal(detail.passed, false);
    assert.match(detail.detail, /hls lists video 640x360, planned 320x180, 640x360/);
    assert.match(detail.detail, /hls lists 0 audio streams, planned 1/);
  });

  test('a renamed segment breaks both the MPD and the playlist references', async () => {
    const copy = await copyOfPackage();
    await rename(path.join(copy.dir, 'audio/2.m4s'), path.join(copy.dir, 'audio/2.bak'));
    const report = await checkConversion({
      result: copy.result,
      inputPath: input,
      workDir: root,
      ctx,
      quality: false,
    });
    assert.deepEqual(failed(report), ['segments_exist']);
    assert.match(report.checks.find((c) => c.name === 'segments_exist')!.detail, /missing: audio\/2\.m4s$/);
  });
});

describe('QC in the task: enforce fails the task, warn records and publishes', () => {
  let scriptDir: string;
  let xmllint: string;
  before(async () => {
    scriptDir = await mkdtemp(path.join(tmpdir(), 'dvc-qc-tool-'));
    xmllint = await rejectingXmllint(scriptDir);
  });
  after(async () => {
    await rm(scriptDir, { recursive: true, force: true });
  });

  for (const mode of ['enforce', 'warn'] as const) {
    test(`QC_MODE=${mode}`, async () => {
      const svc = await startTestService({ QC_MODE: mode, XMLLINT_PATH: xmllint });
      try {
        await copyFile(
          await generateClip({ width: 640, height: 360, seconds: 2, audio: false }),
          path.join(svc.inputDir, 'clip.mp4'),
        );
        const id = await submit(svc.url, 'clip.mp4');
        const { doc } = await waitForFinal(svc.url, id);
        if (mode === 'enforce') {
          assert.equal(doc.status, 'failed');
          assert.equal(doc.error_code, 'qc_failed');
          assert.match(doc.error ?? '', /mpd_schema: .*injected by the test/);
          assert.deepEqual(await readdir(svc.outputDir), [], 'nothing was published');
        } else {
          assert.equal(doc.status, 'completed', doc.error ?? '');
          const full = (await getJson(`${svc.url}/status/${id}`)).body as { qc: QcReport };
          assert.equal(full.qc.passed, false);
          assert.deepEqual(failed(full.qc), ['mpd_schema']);
        }
      } finally {
        await svc.close();
      }
    });
  }
});

describe("QC's look at the source", () => {
  test('spans count only samples shown: not discarded packets, nor time before the input starts', () => {
    // A trimmed MP4 as ffprobe lists it: frames before the edit list's start (needed to decode) at negative
    // times and marked D, and an audio packet whose first 20 ms are cut by the edit list.
    const trimmed = [
      { stream_index: 0, pts_time: '-1.300000', duration_time: '0.033333', flags: 'KD' },
      { stream_index: 1, pts_time: '-1.001333', duration_time: '0.021333', flags: 'KD' },
      { stream_index: 0, pts_time: '-0.033333', duration_time: '0.033333', flags: '_D' },
      { stream_index: 1, pts_time: '-0.020000', duration_time: '0.021333', flags: 'K_' },
      { stream_index: 0, pts_time: '0.000000', duration_time: '0.033333', flags: '__' },
      { stream_index: 1, pts_time: '0.001333', duration_time: '0.021333', flags: 'K_' },
      { stream_index: 0, pts_time: '2.566667', duration_time: '0.033333', flags: '__' },
      { stream_index: 1, pts_time: '2.497333', duration_time: '0.020667', flags: 'K_' },
    ];
    const near = (actual: number, expected: number, what: string) =>
      assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual}, expected ${expected}`);
    const indexes = { video: 0, audio: 1 };
    // With the flags (the check's own listing), and without (the pipeline's probe lists none): the input's
    // start time (0, where the edit list starts) leaves the same packets out.
    for (const packets of [trimmed, trimmed.map(({ flags: _, ...p }) => p)]) {
      const spans = spansFrom({ packets }, indexes, 0);
      near(spans.start, 0, 'start');
      near(spans.video.duration, 2.6, 'video');
      near(spans.video.end, 2.6, 'video end');
      near(spans.audio!.duration, 2.518, 'audio');
    }
    // The flags alone leave the frames before the cut out; the audio packet the cut shortens is not marked.
    near(spansFrom({ packets: trimmed }, indexes).video.duration, 2.6, 'video by the flags alone');

    // Video 0.4 s after the audio: the encode's output, video included, starts with the audio; and with any
    // other stream of the source (here stream 2, not converted) that starts earlier still.
    const lateVideo = [
      { stream_index: 1, pts_time: '1.400000', duration_time: '0.024000' },
      { stream_index: 0, pts_time: '1.810022', duration_time: '0.040000' },
      { stream_index: 0, pts_time: '4.770022', duration_time: '0.040000' },
      { stream_index: 1, pts_time: '4.776000', duration_time: '0.024000' },
    ];
    const spans = spansFrom({ packets: lateVideo }, indexes, 1.4);
    near(spans.start, 1.4, 'start');
    near(spans.video.duration, 3, 'video');
    near(spans.video.end - spans.start, 3.410022, 'video from the start');
    near(spans.audio!.duration, 3.4, 'audio');
    const withEarlier = [{ stream_index: 2, pts_time: '1.200000', duration_time: '0.5' }, ...lateVideo];
    near(spansFrom({ packets: withEarlier }, indexes, 1.2).start, 1.2, 'start with stream 2');
    // The longest a frame is shown: the pause between 1.81 s and 4.77 s; of a source read by its ends, what
    // lies between them is unknown.
    near(spans.video.longestSample, 2.96, 'longest frame');
    near(spansFrom({ packets: lateVideo }, indexes, 1.4, true).video.longestSample, 0, 'read by its ends');
  });

  test('a variable frame rate with a pause (a screen recording) passes: segments may last the pause longer', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-qc-pause-'));
    // ffprobe as installed, each run's arguments written to a log first.
    const log = path.join(dir, 'runs.log');
    const ffprobe = path.join(dir, 'ffprobe');
    await writeFile(ffprobe, `#!/bin/sh\necho "$*" >> '${log}'\nexec ffprobe "$@"\n`);
    await chmod(ffprobe, 0o755);
    const svc = await startTestService({
      FFPROBE_PATH: ffprobe,
      X264_PRESET: 'ultrafast',
      LADDER: '90:100k',
    });
    try {
      // 30 fps, nothing new shown from 3 s to 9 s, then on to 21 s: longer than what is read whole anyway.
      const source = path.join(svc.inputDir, 'paused.mp4');
      await run('ffmpeg', [
        ...['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=30:duration=21'],
        ...['-vf', "select='not(between(t,3,9))',setpts='(N/30+if(gte(T,9),6,0))/TB'"],
        ...['-fps_mode', 'passthrough', '-c:v', 'libx264', '-preset', 'ultrafast', source],
      ]);
      const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'paused.mp4'), 120_000);
      assert.equal(doc.status, 'completed', doc.error ?? '');
      const full = (await getJson(`${svc.url}/status/${doc.task_id}`)).body as { qc: QcReport };
      const segments = full.qc.checks.find((c) => c.name === 'segment_durations');
      assert.equal(segments?.passed, true, JSON.stringify(segments));
      // Longer than what the probe lists whole: the packets are read by the source's ends, and the pause is
      // found in a listing of the video's timestamps alone (every packet as JSON overflows on long sources).
      const runs = (await readFile(log, 'utf8'))
        .split('\n')
        .filter((l) => l.includes('-show_entries packet'));
      assert.ok(
        runs.some((l) => /-read_intervals %\+10,/.test(l)),
        `the source's ends were read: ${runs.join(' | ')}`,
      );
      assert.ok(
        runs.some((l) => /-select_streams 0 -show_entries packet=pts_time,flags -of csv/.test(l)),
        `its video's timestamps were listed: ${runs.join(' | ')}`,
      );
      const mpd = parseMpd(
        await readFile(path.join(svc.outputDir, doc.output!.prefix, 'manifest.mpd'), 'utf8'),
      );
      const { stdout } = await run('ffprobe', [
        ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=duration', '-of', 'csv=p=0'],
        source,
      ]);
      assert.ok(
        Math.abs(mpd.duration - Number(stdout)) < 0.1,
        `the package lasts ${mpd.duration} s, the source's video ${stdout.trim()} s`,
      );
    } finally {
      await svc.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a short source is probed once (its packets come with the probe), a long one by its ends', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-qc-probe-'));
    // ffprobe as installed, each run's arguments written to a log first.
    const log = path.join(dir, 'runs.log');
    const ffprobe = path.join(dir, 'ffprobe');
    await writeFile(ffprobe, `#!/bin/sh\necho "$*" >> '${log}'\nexec ffprobe "$@"\n`);
    await chmod(ffprobe, 0o755);
    const svc = await startTestService({
      FFPROBE_PATH: ffprobe,
      X264_PRESET: 'ultrafast',
      LADDER: '90:100k',
    });
    try {
      const runs = async () =>
        (await readFile(log, 'utf8')).split('\n').filter((l) => l.includes('packet=stream_index'));
      for (const [name, seconds, separate] of [
        ['short.mp4', 3, 0],
        ['long.mp4', 26, 1],
      ] as const) {
        await copyFile(
          await generateClip({ width: 160, height: 90, seconds, audio: true }),
          path.join(svc.inputDir, name),
        );
        const before = (await runs()).length;
        const id = await submit(svc.url, name);
        const { doc } = await waitForFinal(svc.url, id, 120_000);
        assert.equal(doc.status, 'completed', doc.error ?? '');
        const full = (await getJson(`${svc.url}/status/${id}`)).body as { qc: QcReport };
        assert.ok(
          full.qc.checks.some((c) => c.name === 'av_durations' && c.passed),
          JSON.stringify(full.qc),
        );
        const listed = (await runs()).slice(before);
        assert.equal(listed.length, 1 + separate, listed.join('\n'));
        assert.match(listed[0]!, /-show_streams.*-read_intervals %\+30/, 'the probe lists the first 30 s');
        if (separate) assert.doesNotMatch(listed[1]!, /-show_streams/, 'then the ends, on their own');
      }
    } finally {
      await svc.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Runs FFmpeg with these arguments (quiet, overwriting). */
async function ffmpeg(...args: string[]): Promise<void> {
  await run('ffmpeg', ['-v', 'error', '-y', ...args]);
}

/**
 * Sources whose streams do not start at their first packet, or not together: an MP4 trimmed without
 * re-encoding (as phones trim: edit lists hide the frames before the cut that decoding needs) and an MPEG-TS
 * whose video starts 0.4 s after its audio.
 */
interface UnevenSources {
  trimmed: string;
  lateVideo: string;
  /** 4 s of video, audio for its last 2 s only (`-itsoffset`, streams copied). */
  lateAudio: string;
  /** 0.5 s of video, 3 s of audio (a camera that stopped first). */
  shortVideo: string;
}

async function makeUnevenSources(dir: string): Promise<UnevenSources> {
  const long = path.join(dir, 'long.mp4');
  await ffmpeg(
    ...['-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=30:d=6', '-f', 'lavfi', '-i', 'sine=r=48000:d=6'],
    ...['-c:v', 'libx264', '-preset', 'medium', '-bf', '8', '-g', '90', '-c:a', 'aac', long],
  );
  const trimmed = path.join(dir, 'trimmed.mp4');
  await ffmpeg('-ss', '1.3', '-i', long, '-c', 'copy', '-t', '2.5', trimmed);
  const lateVideo = path.join(dir, 'late-video.ts');
  await ffmpeg(
    ...['-itsoffset', '0.4', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=3'],
    ...['-f', 'lavfi', '-i', 'sine=r=48000:d=3.4'],
    ...['-c:v', 'libx264', '-c:a', 'mp2', '-f', 'mpegts', lateVideo],
  );
  const video = path.join(dir, 'video4.mp4');
  await ffmpeg(
    '-f',
    'lavfi',
    '-i',
    'testsrc2=s=320x240:r=30:d=4',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    video,
  );
  const tone = path.join(dir, 'tone2.m4a');
  await ffmpeg('-f', 'lavfi', '-i', 'sine=r=48000:d=2', '-c:a', 'aac', tone);
  const lateAudio = path.join(dir, 'late-audio.mp4');
  await ffmpeg('-i', video, '-itsoffset', '2', '-i', tone, '-map', '0', '-map', '1', '-c', 'copy', lateAudio);
  const shortVideo = path.join(dir, 'short-video.mp4');
  await ffmpeg(
    ...['-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=30:d=0.5', '-f', 'lavfi', '-i', 'sine=r=48000:d=3'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', shortVideo],
  );
  return { trimmed, lateVideo, lateAudio, shortVideo };
}

/** Takes the last segment of the video or the audio out of a package's MPD (the file stays, unreferenced). */
async function dropLastSegment(dir: string, kind: 'video' | 'audio'): Promise<void> {
  const mpdPath = path.join(dir, 'manifest.mpd');
  const mpd = await readFile(mpdPath, 'utf8');
  const end = mpd.indexOf('</SegmentTimeline>', mpd.indexOf(`contentType="${kind}"`));
  const at = mpd.lastIndexOf('<S ', end);
  const entry = mpd.slice(at, mpd.indexOf('/>', at) + 2);
  const repeats = /r="(\d+)"/.exec(entry);
  const kept = repeats ? entry.replace(/r="\d+"/, `r="${Number(repeats[1]) - 1}"`) : '';
  await writeFile(mpdPath, mpd.slice(0, at) + kept + mpd.slice(at + entry.length));
}

describe('QC of sources whose streams start before their first shown sample, or apart', () => {
  let root: string;
  let sources: UnevenSources;
  const ctx = {
    tools: defaultTools(),
    logger: createLogger('silent'),
    idleTimeoutMs: 60_000,
    maxRuntimeMs: 300_000,
    tempDir: tmpdir(),
  };
  const config = loadConfig({ X264_PRESET: 'ultrafast', LADDER: '180:300k', SEGMENT_DURATION: '2' });

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-qc-uneven-'));
    sources = await makeUnevenSources(root);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const durations = (report: QcReport) => report.checks.find((c) => c.name === 'av_durations')!;

  /** Converts a source, checks the package, then checks copies that lost their last video or audio segment. */
  const convertAndCheck = async (input: string, name: string) => {
    const result = await convert(input, path.join(root, `work-${name}`), ctx, {
      settings: config.encode,
      limits: config.limits,
    });
    const report = await checkConversion({
      result,
      inputPath: input,
      workDir: path.join(root, `qc-${name}`),
      ctx,
      quality: false,
    });
    const truncated = async (kind: 'video' | 'audio') => {
      const dir = path.join(root, `${name}-without-last-${kind}`);
      await cp(result.package.dir, dir, { recursive: true });
      await dropLastSegment(dir, kind);
      const copy = { ...result, package: { ...result.package, dir } };
      return checkConversion({
        result: copy,
        inputPath: input,
        workDir: path.join(root, `qc-${name}-${kind}`),
        ctx,
        quality: false,
      });
    };
    return { result, report, truncated };
  };

  test('an MP4 trimmed without re-encoding (edit lists): the package passes; one missing its end fails', async () => {
    const { report, truncated } = await convertAndCheck(sources.trimmed, 'trimmed');
    assert.deepEqual(failed(report), [], describeFailures(report));
    // What players show: 2.6 s of video (ffprobe's format duration), not the 3.9 s its packets span.
    assert.match(durations(report).detail, /^video 2\.600 s \(source 2\.600 s ± [\d.]+ s\), audio 2\.518 s/);

    const noVideoEnd = await truncated('video');
    assert.deepEqual(failed(noVideoEnd), ['av_durations']);
    assert.match(describeFailures(noVideoEnd), /video 0 lasts 2\.000 s, the source's video 2\.600 s/);
    const noAudioEnd = await truncated('audio');
    assert.deepEqual(failed(noAudioEnd), ['av_durations']);
    assert.match(describeFailures(noAudioEnd), /audio lasts 2\.007 s, the source's audio 2\.518 s/);
  });

  test('an MPEG-TS whose video starts 0.4 s after its audio: the package passes; one missing its end fails', async () => {
    const { report, truncated } = await convertAndCheck(sources.lateVideo, 'late-video');
    assert.deepEqual(failed(report), [], describeFailures(report));
    // The encode's constant frame rate output repeats the first frame from where the audio starts.
    assert.match(durations(report).detail, /^video 3\.400 s \(source 3\.410 s ± [\d.]+ s\), audio 3\.40\d s/);

    const noVideoEnd = await truncated('video');
    assert.deepEqual(failed(noVideoEnd), ['av_durations']);
    assert.match(describeFailures(noVideoEnd), /video 0 lasts 2\.000 s, the source's video 3\.410 s/);
  });

  test('audio that starts 2 s after the video: silence before it, both streams start together; the check passes', async () => {
    const { result, report } = await convertAndCheck(sources.lateAudio, 'late-audio');
    assert.deepEqual(failed(report), [], describeFailures(report));
    assert.equal(result.plan.audioTracks[0]?.padStart, true);
    assert.match(
      durations(report).detail,
      /^video 4\.000 s \(source 4\.000 s ± [\d.]+ s\), audio 4\.0\d\d s/,
    );
    const mpd = parseMpd(await readFile(path.join(result.package.dir, 'manifest.mpd'), 'utf8'));
    const audio = mpd.representations.find((r) => r.contentType === 'audio')!;
    assert.ok(audio.durations.reduce((a, b) => a + b, 0) > 3.9, 'the audio lasts as long as the video');
  });

  test('video that ends 2.5 s before the audio: its last frame is held to the end; the check passes', async () => {
    const { result, report, truncated } = await convertAndCheck(sources.shortVideo, 'short-video');
    assert.deepEqual(failed(report), [], describeFailures(report));
    assert.equal(result.plan.holdLastFrame, 2.5);
    assert.match(durations(report).detail, /^video 3\.000 s \(source 3\.000 s ± [\d.]+ s\)/);
    const mpd = parseMpd(await readFile(path.join(result.package.dir, 'manifest.mpd'), 'utf8'));
    assert.equal(mpd.duration, 3, 'the presentation lasts as long as the audio');
    const noVideoEnd = await truncated('video');
    assert.deepEqual(failed(noVideoEnd), ['av_durations']);
  });

  test('through the service, all complete with the package check passed', async () => {
    const svc = await startTestService({ X264_PRESET: 'ultrafast', LADDER: '180:300k' });
    try {
      for (const source of Object.values(sources)) {
        const name = path.basename(source);
        await copyFile(source, path.join(svc.inputDir, name));
        const id = await submit(svc.url, name);
        const { doc } = await waitForFinal(svc.url, id);
        assert.equal(doc.status, 'completed', `${name}: ${doc.error ?? ''}`);
        const full = (await getJson(`${svc.url}/status/${id}`)).body as { qc: QcReport };
        assert.equal(full.qc.passed, true, `${name}: ${describeFailures(full.qc)}`);
        assert.ok(durations(full.qc).passed, `${name}: ${durations(full.qc).detail}`);
      }
    } finally {
      await svc.close();
    }
  });
});
