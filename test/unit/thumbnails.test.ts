import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { contentTypeFor, isImmutableMedia } from '../../src/jobs/content-type.js';
import { publishOrder } from '../../src/jobs/publish.js';
import { parseThumbnailVtt } from '../../src/manifests/thumbnail-vtt.js';
import { buildEncodeArgs } from '../../src/pipeline/ffmpeg-args.js';
import { planEncode } from '../../src/pipeline/plan.js';
import { planThumbnails, thumbnailOutputsIn, thumbnailVtt } from '../../src/pipeline/thumbnails.js';
import { jpegSizeOf } from '../../src/qc/jpeg-size.js';
import { checkThumbnails } from '../../src/qc/thumbnail-check.js';
import { mediaInfo, testEncodeSettings } from '../helpers/media-info.js';

describe('thumbnail plan', () => {
  test('160–240 px wide in the top rung’s shape, never larger than it, even sizes', () => {
    const size = (w: number, h: number) => {
      const p = planThumbnails({ duration: 60 }, { width: w, height: h });
      return `${p.width}x${p.height}`;
    };
    assert.equal(size(1280, 720), '240x136');
    assert.equal(size(720, 1280), '160x284', 'portrait: the narrowest width, its own shape');
    assert.equal(size(960, 720), '208x156');
    assert.equal(size(720, 720), '180x180');
    assert.equal(size(128, 72), '128x72', 'a tiny video is not enlarged');
  });
  test('every 2 s up to 20 minutes, then so that about 600 are taken, never more than 10 s apart', () => {
    const every = (duration: number) => planThumbnails({ duration }, { width: 640, height: 360 }).interval;
    assert.deepEqual([0.5, 40, 300, 1200, 1800, 3600, 4 * 3600].map(every), [2, 2, 2, 2, 3, 6, 10]);
  });
  test('rotated and anamorphic sources: the rungs’ displayed shape, as planned', () => {
    const rotated = planEncode(mediaInfo(720, 1280, { codedWidth: 1280, codedHeight: 720, rotation: 90 }), {
      ...testEncodeSettings,
    });
    assert.equal(rotated.thumbnails!.height > rotated.thumbnails!.width, true);
    const anamorphic = planEncode(
      mediaInfo(1440, 720, { codedWidth: 720, codedHeight: 720, sampleAspectRatio: 2 }),
      testEncodeSettings,
    );
    assert.deepEqual([anamorphic.thumbnails!.width, anamorphic.thumbnails!.height], [240, 120]);
    assert.equal(
      planEncode(mediaInfo(640, 360), { ...testEncodeSettings, thumbnails: false }).thumbnails,
      undefined,
    );
  });
  test('the encode branch: one frame per interval, tiled, each time printed; the sheets primed', () => {
    const media = mediaInfo(1280, 720);
    const plan = planEncode(media, testEncodeSettings);
    const outputs = {
      video: { video_360p: '/w/v360.mp4', video_720p: '/w/v720.mp4' },
      audio: {},
      poster: '/w/poster-%d.jpg',
      thumbnails: thumbnailOutputsIn("/w/it's: odd,[dir]"),
    };
    const args = buildEncodeArgs({ inputPath: '/in.mp4', media, plan, outputs });
    const graph = args[args.indexOf('-filter_complex') + 1]!;
    assert.match(
      graph,
      /\[t\]fps=fps=1\/2,scale=240:136:flags=bicubic,setsar=1,metadata=mode=add:key=thumbnail:value=1,metadata=mode=print:key=thumbnail:file=\/w\/it\\\\\\'s\\\\: odd\\,\\\[dir\\\]\/thumbnail-times.txt,tile=10x10\[thumbnails_frames\]/,
    );
    // A black frame first, so that the output starts (and FFmpeg reports progress) before a sheet is full.
    assert.match(graph, /;\[2:v\]\[thumbnails_frames\]concat=n=2:v=1:a=0,setpts=N\/\(25\*TB\)\[thumbnails\]/);
    assert.ok(
      args.includes('color=c=black:s=2400x1360:r=25:d=0.04,format=yuv420p'),
      'the sheets’ primer input',
    );
    const sheets = args.indexOf("file:/w/it's: odd,[dir]/sheet-%d.jpg");
    assert.ok(sheets > 0);
    const own = args.slice(args.lastIndexOf('-map', sheets), sheets);
    assert.deepEqual(own.slice(0, 2), ['-map', '[thumbnails]']);
    const expected: [string, string][] = [
      ['-fps_mode', 'vfr'],
      ['-start_number', '0'],
      ['-f', 'image2'],
      ['-c:v', 'mjpeg'],
    ];
    for (const [flag, value] of expected) assert.equal(own[own.indexOf(flag) + 1], value, flag);
  });
});

describe('thumbnails.vtt', () => {
  const plan = { interval: 2, width: 240, height: 136, columns: 10, rows: 10 };
  test('cues from 0 to the end without gaps, each at its rectangle of its sheet', () => {
    const times = Array.from({ length: 102 }, (_, i) => i * 2);
    const vtt = thumbnailVtt(times, ['m/thumbnails/sheet-1.jpg', 'm/thumbnails/sheet-2.jpg'], plan, 203.5);
    const cues = parseThumbnailVtt(vtt);
    assert.equal(cues.length, 102);
    assert.deepEqual(cues[0], {
      start: 0,
      end: 2,
      url: 'm/thumbnails/sheet-1.jpg',
      rect: { x: 0, y: 0, w: 240, h: 136 },
    });
    assert.deepEqual(cues[99]!.rect, { x: 2160, y: 1224, w: 240, h: 136 });
    assert.equal(cues[100]!.url, 'm/thumbnails/sheet-2.jpg');
    assert.deepEqual(cues[101], {
      start: 202,
      end: 203.5,
      url: 'm/thumbnails/sheet-2.jpg',
      rect: { x: 240, y: 0, w: 240, h: 136 },
    });
  });
  test('published before the manifests, the sheets with the media (immutable), the track as text/vtt', () => {
    const files = ['manifest.mpd', 'master.m3u8', 'poster.jpg', 'thumbnails.vtt', 'm/thumbnails/sheet-1.jpg'];
    assert.deepEqual(publishOrder(files), [
      ['m/thumbnails/sheet-1.jpg'],
      ['poster.jpg', 'thumbnails.vtt'],
      ['manifest.mpd', 'master.m3u8'],
    ]);
    assert.equal(contentTypeFor('p/thumbnails.vtt'), 'text/vtt');
    assert.equal(isImmutableMedia('m/thumbnails/sheet-1.jpg'), true);
    assert.equal(isImmutableMedia('thumbnails.vtt') || isImmutableMedia('poster.jpg'), false);
  });
  test('a video shorter than one interval: one cue, from 0 to its end', () => {
    const cues = parseThumbnailVtt(thumbnailVtt([0], ['sheet-1.jpg'], plan, 0.8));
    assert.deepEqual(
      cues.map((c) => [c.start, c.end]),
      [[0, 0.8]],
    );
  });
});

describe('QC: thumbnails', () => {
  type Sheets = Map<string, { width: number; height: number } | undefined>;
  const sheets: Sheets = new Map([['m/thumbnails/sheet-1.jpg', { width: 2400, height: 1360 }]]);
  const plan = { interval: 2, width: 240, height: 136, columns: 10, rows: 10 };
  const cuesOf = (text: string) => parseThumbnailVtt(text);
  const sound = thumbnailVtt([0, 2, 4], ['m/thumbnails/sheet-1.jpg'], plan, 5);
  const check = (text: string, duration = 5, known = sheets) =>
    checkThumbnails({ cues: cuesOf(text), sheets: known, track: 'thumbnails.vtt', duration });

  test('a sound track passes', () => {
    const c = check(sound);
    assert.equal(c.passed, true, c.detail);
    assert.equal(c.name, 'thumbnails');
  });
  test('a gap, a late start, a short end, a rectangle outside its sheet and a missing sheet each fail, saying so', () => {
    const gap = sound.replace('00:00:04.000 --> 00:00:05.000', '00:00:04.500 --> 00:00:05.000');
    assert.match(check(gap).detail, /cue 2 ends at 4 s and the next starts at 4.5 s/);
    const late = sound.replace('00:00:00.000 --> 00:00:02.000', '00:00:00.500 --> 00:00:02.000');
    assert.match(check(late).detail, /first cue starts at 0.5 s/);
    assert.match(check(sound, 12).detail, /the cues end at 5.000 s, the package at 12.000 s/);
    const outside = sound.replace('#xywh=480,0,240,136', '#xywh=2300,0,240,136');
    assert.match(check(outside).detail, /cue 3's rectangle 2300,0,240,136 is not inside 2400x1360/);
    const missing = check(sound, 5, new Map([['m/thumbnails/sheet-1.jpg', undefined]]) as Sheets);
    assert.match(missing.detail, /sheet m\/thumbnails\/sheet-1.jpg is missing or not a JPEG/);
    for (const c of [gap, late, outside].map((t) => check(t))) assert.equal(c.passed, false);
    assert.equal(check(sound, 12).passed, false);
    assert.equal(missing.passed, false);
    assert.throws(() => cuesOf('00:00:00.000 --> 00:00:02.000\nsheet.jpg'), /WEBVTT/);
  });
  test("a JPEG's size from its frame header", () => {
    // SOI, an APP0 segment of 16 bytes, then SOF0: precision 8, height 1360, width 2400.
    const jpeg = Buffer.from([
      0xff,
      0xd8,
      0xff,
      0xe0,
      0x00,
      0x10,
      ...Array<number>(14).fill(0),
      0xff,
      0xc0,
      0x00,
      0x11,
      0x08,
      0x05,
      0x50,
      0x09,
      0x60,
    ]);
    assert.deepEqual(jpegSizeOf(jpeg), { width: 2400, height: 1360 });
    assert.equal(jpegSizeOf(Buffer.from('not a jpeg')), undefined);
  });
});
