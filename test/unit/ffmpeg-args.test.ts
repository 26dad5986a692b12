import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildEncodeArgs, defaultTuning, parseProgressLine } from '../../src/pipeline/ffmpeg-args.js';
import type { MediaInfo } from '../../src/pipeline/media-info.js';
import { planEncode } from '../../src/pipeline/plan.js';
import { mediaInfo, testEncodeSettings } from '../helpers/media-info.js';

// 1080p with audio as stream 0 and video as stream 1, 5.1 audio, 20 s.
const media: MediaInfo = {
  ...mediaInfo(1920, 1080, { index: 1 }),
  duration: 20,
  audio: { index: 0, codec: 'aac', channels: 6, sampleRate: 48000 },
};
const plan = planEncode(media, testEncodeSettings);

const outputs = {
  video: { video_360p: '/w/e/video_360p.mp4', video_720p: '/w/e/video_720p.mp4' },
  audio: '/w/e/audio.mp4',
  poster: '/w/e/poster.jpg',
};

describe('the single FFmpeg invocation', () => {
  const args = buildEncodeArgs('/in/-x;$(rm -rf ~).mp4', media, plan, outputs);
  const after = (flag: string) => args.filter((_, i) => args[i - 1] === flag);

  test('one input, read as a local file only, whatever its name', () => {
    assert.deepEqual(after('-i'), ['file:/in/-x;$(rm -rf ~).mp4']);
    assert.deepEqual(after('-protocol_whitelist'), ['file']);
    assert.equal(after('-format_whitelist').length, 1);
  });
  test('decodes once: one filter graph splitting the stream that probe chose', () => {
    const [graph] = after('-filter_complex');
    assert.ok(graph!.startsWith('[0:1]'), graph);
    assert.match(graph!, /split=/);
    assert.match(graph!, /zscale=w=1280:h=720:filter=bicubic/);
    assert.match(graph!, /zscale=w=640:h=360:filter=bicubic/);
  });
  test('rungs resized by zimg unless told otherwise, or the frames have an odd size zimg refuses', () => {
    const graphOf = (m: MediaInfo, scaler: 'zscale' | 'swscale') =>
      buildEncodeArgs('/in.mp4', m, planEncode(m, { ...testEncodeSettings, scaler }), outputs).find((a) =>
        a.includes('split='),
      )!;
    assert.doesNotMatch(graphOf(media, 'swscale'), /zscale/);
    assert.match(graphOf(media, 'swscale'), /\bscale=1280:720:flags=bicubic/);
    const odd = mediaInfo(1279, 721);
    assert.equal(planEncode(odd, testEncodeSettings).scaler, 'swscale');
    assert.doesNotMatch(graphOf(odd, 'zscale'), /zscale/);
    // A name only libswscale knows keeps libswscale.
    const areaArgs = buildEncodeArgs('/in.mp4', media, plan, outputs, {
      ...defaultTuning,
      scaleFlags: 'area',
    });
    assert.match(
      areaArgs.find((a) => a.includes('split='))!,
      /\bscale=1280:720:flags=area/,
    );
  });
  test('every rung: libx264 capped VBR, keyframes forced on the segment grid, no scene cuts', () => {
    assert.deepEqual(after('-c:v'), ['libx264', 'libx264', 'mjpeg'], 'two rungs, then the poster');
    assert.deepEqual(after('-b:v'), ['550000', '2800000']);
    assert.deepEqual(after('-maxrate'), ['550000', '2800000']);
    assert.deepEqual(after('-bufsize'), ['1100000', '5600000']);
    assert.deepEqual(after('-force_key_frames'), ['expr:gte(t,n_forced*4)', 'expr:gte(t,n_forced*4)']);
    assert.deepEqual(after('-sc_threshold'), ['0', '0']);
  });
  test('audio encoded once, stereo at 48 kHz, from the stream probe chose; outputs are file: URLs', () => {
    assert.deepEqual(after('-c:a'), ['aac']);
    assert.deepEqual(after('-ac'), ['2']);
    assert.ok(after('-map').includes('0:0'));
    for (const f of [...Object.values(outputs.video), outputs.audio])
      assert.ok(args.includes(`file:${f}`), f);
    assert.ok(args.includes('pipe:1'), 'progress on stdout');
  });
  test("audio the plan copies keeps the source's stream: no encoder, no resampling", () => {
    const stereo: MediaInfo = {
      ...media,
      audio: { index: 0, codec: 'aac', profile: 'LC', channels: 2, sampleRate: 44_100, bitRate: 128_000 },
    };
    const copied = buildEncodeArgs('/in.mp4', stereo, planEncode(stereo, testEncodeSettings), outputs);
    const flagged = (flag: string) => copied.filter((_, i) => copied[i - 1] === flag);
    assert.deepEqual(flagged('-c:a'), ['copy']);
    for (const flag of ['-b:a', '-ac', '-ar']) assert.ok(!copied.includes(flag), flag);
  });
  test('progress lines give seconds of output', () => {
    assert.equal(parseProgressLine('out_time_us=2500000'), 2.5);
    assert.equal(parseProgressLine('out_time_ms=1000000'), 1);
    assert.equal(parseProgressLine('frame=12'), undefined);
  });
});
