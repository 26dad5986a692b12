import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeFailures } from '../../src/domain/qc-report.js';
import { parseThumbnailVtt } from '../../src/manifests/thumbnail-vtt.js';
import { convert } from '../../src/pipeline/convert.js';
import { buildEncodeArgs, parseProgressLine } from '../../src/pipeline/ffmpeg-args.js';
import { probeSource } from '../../src/pipeline/probe.js';
import { planEncode } from '../../src/pipeline/plan.js';
import { thumbnailOutputsIn } from '../../src/pipeline/thumbnails.js';
import { defaultTools } from '../../src/pipeline/tools.js';
import { createLogger } from '../../src/process/logger.js';
import { ProcessError, runProcess } from '../../src/process/run-process.js';
import { checkConversion } from '../../src/qc/check-conversion.js';
import { jpegSize } from '../../src/qc/jpeg-size.js';
import { generateClip, sharedMediaDir } from '../helpers/media.js';
import { testEncodeSettings } from '../helpers/media-info.js';

const ctx = {
  tools: defaultTools(),
  logger: createLogger('silent'),
  idleTimeoutMs: 60_000,
  maxRuntimeMs: 300_000,
  tempDir: tmpdir(),
};

describe('thumbnails from the encode run (real FFmpeg)', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-thumbs-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('progress is reported from the start, not once the first sheet is full; sheets are written as they fill', async () => {
    const input = await generateClip({ width: 320, height: 180, seconds: 8, audio: false });
    const { media } = await probeSource(input, { ffprobe: ctx.tools.ffprobe, ffmpeg: ctx.tools.ffmpeg });
    const plan = planEncode(media, { ...testEncodeSettings, ladder: [{ height: 180, bitrate: 200_000 }] });
    // Sheets of 4 thumbnails a second apart: the first is full about 4 s in, the poster is taken 1.6 s in.
    plan.thumbnails = { ...plan.thumbnails!, interval: 1, columns: 2, rows: 2 };
    const dir = path.join(root, 'progress');
    await mkdir(dir);
    const outputs = {
      video: { [plan.renditions[0]!.name]: path.join(dir, 'video.mp4') },
      audio: {},
      poster: path.join(dir, 'poster-%d.jpg'),
      thumbnails: thumbnailOutputsIn(dir),
    };
    const args = buildEncodeArgs({ inputPath: input, media, plan, outputs });
    // Read at twice real time and report every 0.2 s, so that the run lasts long enough to watch it.
    const i = args.indexOf('-i');
    args.splice(i, 0, '-readrate', '2');
    args.splice(args.indexOf('-progress'), 0, '-stats_period', '0.2');
    const seen: { at: number; sheet: boolean }[] = [];
    const firstSheet = path.join(dir, 'sheet-1.jpg');
    await runProcess(ctx.tools.ffmpeg, args, {
      onStdoutLine: (line) => {
        const at = parseProgressLine(line);
        if (at !== undefined) seen.push({ at, sheet: existsSync(firstSheet) });
      },
    }).catch((err: ProcessError) => assert.fail(err.stderrTail));
    assert.ok(seen.length > 3, `progress lines: ${JSON.stringify(seen)}`);
    assert.ok(seen[0]!.at < 1.5, `the first progress is at ${seen[0]!.at} s of output, before any image`);
    assert.ok(
      seen.some((s) => s.sheet && s.at < 7.5),
      `the first sheet is written before the end: ${JSON.stringify(seen)}`,
    );
    assert.ok(existsSync(path.join(dir, 'sheet-2.jpg')) && existsSync(path.join(dir, 'poster-1.jpg')));
  });

  // Portrait, rotated (a phone's 90°), anamorphic (2:1 pixels), shorter than one interval.
  const shapes = [
    { name: 'portrait', clip: () => generateClip({ width: 180, height: 320, seconds: 3, audio: true }) },
    { name: 'rotated', clip: async () => path.join(sharedMediaDir, 'iphone_rot90_audio_first.mov') },
    { name: 'anamorphic', clip: async () => path.join(sharedMediaDir, 'sar_2x1_noaudio.mp4') },
    { name: 'short', clip: () => generateClip({ width: 320, height: 180, seconds: 1, audio: true }) },
  ];
  for (const shape of shapes) {
    test(`${shape.name}: thumbnails in the top rung's shape, cues from 0 to the end, QC passes`, async () => {
      const source = await shape.clip();
      const input = path.join(root, `${shape.name}${path.extname(source)}`);
      await copyFile(source, input);
      const work = path.join(root, `work-${shape.name}`);
      const result = await convert(input, work, ctx, {
        settings: {
          ...testEncodeSettings,
          preset: 'ultrafast',
          formats: ['dash', 'hls'],
          ladder: [{ height: 180, bitrate: 300_000 }],
          segmentDuration: 2,
        },
        limits: { maxDurationSeconds: 3600, maxPixels: 1e8, maxFrameRate: 240 },
        mediaDir: 'media-1',
      });
      const thumbs = result.thumbnails!;
      assert.ok(thumbs, 'thumbnails made');
      const top = result.plan.renditions.at(-1)!;
      const shapeOf = (w: number, h: number) => w / h;
      assert.ok(
        Math.abs(shapeOf(thumbs.plan.width, thumbs.plan.height) / shapeOf(top.width, top.height) - 1) < 0.03,
        `${thumbs.plan.width}x${thumbs.plan.height} has the shape of ${top.width}x${top.height}`,
      );
      const sheet = await jpegSize(path.join(work, 'package', thumbs.sheets[0]!));
      assert.deepEqual(sheet, { width: thumbs.plan.width * 10, height: thumbs.plan.height * 10 });
      const cues = parseThumbnailVtt(await readFile(path.join(work, 'package', 'thumbnails.vtt'), 'utf8'));
      assert.equal(cues[0]!.start, 0);
      assert.ok(Math.abs(cues.at(-1)!.end - result.media.duration) < 0.01);
      if (shape.name === 'short') assert.equal(cues.length, 1, 'one thumbnail for a video under an interval');
      const master = await readFile(path.join(work, 'package', 'master.m3u8'), 'utf8');
      assert.match(master, /#EXT-X-I-FRAME-STREAM-INF:.*URI="media-1\/video_180p\/iframe.m3u8"/);
      const report = await checkConversion({
        result,
        inputPath: input,
        workDir: path.join(work, 'qc'),
        ctx,
        quality: false,
      });
      assert.equal(report.passed, true, describeFailures(report));
      assert.equal(report.checks.find((c) => c.name === 'thumbnails')?.passed, true);
    });
  }

  test('"thumbnails": false (THUMBNAILS=false): no sheets, no track, no image AdaptationSet, no I-frame playlists', async () => {
    const input = await generateClip({ width: 320, height: 180, seconds: 3, audio: true });
    const work = path.join(root, 'work-off');
    const result = await convert(input, work, ctx, {
      settings: {
        ...testEncodeSettings,
        preset: 'ultrafast',
        formats: ['dash', 'hls'],
        ladder: [{ height: 180, bitrate: 300_000 }],
        thumbnails: false,
      },
      limits: { maxDurationSeconds: 3600, maxPixels: 1e8, maxFrameRate: 240 },
    });
    assert.equal(result.thumbnails, undefined);
    assert.deepEqual(
      result.package.files.filter((f) => /thumbnail|sheet|iframe|\.vtt$/.test(f)),
      [],
    );
    const mpd = await readFile(path.join(work, 'package', 'manifest.mpd'), 'utf8');
    assert.doesNotMatch(mpd, /contentType="image"|thumbnail_tile/);
    const master = await readFile(path.join(work, 'package', 'master.m3u8'), 'utf8');
    assert.doesNotMatch(master, /I-FRAME/);
    assert.match(master, /#EXT-X-STREAM-INF/);
  });
});
