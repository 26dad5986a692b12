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
  audio: { audio: '/w/e/audio.mp4' },
  poster: '/w/e/poster.jpg',
};

describe('the single FFmpeg invocation', () => {
  const args = buildEncodeArgs({ inputPath: '/in/-x;$(rm -rf ~).mp4', media, plan, outputs });
  const after = (flag: string) => args.filter((_, i) => args[i - 1] === flag);

  test('one input, read as a local file only, whatever its name', () => {
    // Then the poster's primer, one black frame from FFmpeg's own source (see imageOutputPrimer).
    assert.deepEqual(after('-i'), [
      'file:/in/-x;$(rm -rf ~).mp4',
      'color=c=black:s=1280x720:r=25:d=0.04,format=yuv420p',
    ]);
    assert.deepEqual(after('-f').slice(0, 1), ['lavfi']);
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
      buildEncodeArgs({
        inputPath: '/in.mp4',
        media: m,
        plan: planEncode(m, { ...testEncodeSettings, scaler }),
        outputs,
      }).find((a) => a.includes('split='))!;
    assert.doesNotMatch(graphOf(media, 'swscale'), /zscale/);
    assert.match(graphOf(media, 'swscale'), /\bscale=1280:720:flags=bicubic/);
    const odd = mediaInfo(1279, 721);
    assert.equal(planEncode(odd, testEncodeSettings).scaler, 'swscale');
    assert.doesNotMatch(graphOf(odd, 'zscale'), /zscale/);
    // A name only libswscale knows keeps libswscale.
    const areaArgs = buildEncodeArgs({
      inputPath: '/in.mp4',
      media,
      plan,
      outputs,
      tuning: {
        ...defaultTuning,
        scaleFlags: 'area',
      },
    });
    assert.match(
      areaArgs.find((a) => a.includes('split='))!,
      /\bscale=1280:720:flags=area/,
    );
  });
  test('interlaced sources are deinterlaced first, before the split; progressive ones are not', () => {
    const graphOf = (m: MediaInfo) =>
      buildEncodeArgs({
        inputPath: '/in.mp4',
        media: m,
        plan: planEncode(m, testEncodeSettings),
        outputs,
      }).find((a) => a.includes('split='))!;
    const interlaced = mediaInfo(1920, 1080, { interlaced: true });
    assert.equal(planEncode(interlaced, testEncodeSettings).deinterlace, true);
    assert.match(
      graphOf(interlaced),
      /^\[0:0\]bwdif=mode=send_frame:parity=auto:deint=interlaced,[^;]*split=/,
    );
    assert.equal(plan.deinterlace, false);
    assert.doesNotMatch(graphOf(media), /bwdif/);
  });
  test('HDR sources: tone-mapped once, by zimg, at the top rung and the poster; SDR ones and swscale not', () => {
    const hdr = mediaInfo(3840, 2160, { colorTransfer: 'arib-std-b67', pixelFormat: 'yuv420p10le' });
    const hdrPlan = planEncode(hdr, testEncodeSettings);
    assert.equal(hdrPlan.toneMap, true);
    const graph = buildEncodeArgs({ inputPath: '/in.mp4', media: hdr, plan: hdrPlan, outputs }).find((a) =>
      a.includes('split='),
    )!;
    const [source, top, lower, poster] = graph.split(';');
    // The source keeps its depth up to the tone mapping; only the top rung reads it and maps it, in the same
    // zimg pass as its resize; the lower rung is made from the top rung's SDR frames.
    assert.doesNotMatch(source!, /format=yuv420p/);
    assert.match(top!, /^\[c\]zscale=w=1280:h=720:filter=bicubic[^,]*:t=linear:npl=100,format=gbrpf32le,/);
    assert.match(
      top!,
      /tonemap=tonemap=mobius:param=0.5:desat=0,zscale=p=bt709:t=bt709:m=bt709:r=tv,format=yuv420p,/,
    );
    assert.doesNotMatch(lower!, /tonemap|t=linear/);
    assert.match(
      poster!,
      /^\[p\]setpts=PTS-STARTPTS,trim=[^,]*,zscale=w=1280:h=720:[^,]*t=linear.*tonemap=.*,thumbnail=/,
    );
    assert.equal(graph.match(/tonemap=tonemap=/g)!.length, 2, 'the top rung and the poster, nothing else');

    assert.equal(planEncode(hdr, { ...testEncodeSettings, scaler: 'swscale' }).toneMap, false);
    assert.equal(
      planEncode(mediaInfo(1920, 1080, { colorTransfer: 'bt709' }), testEncodeSettings).toneMap,
      false,
    );
    assert.equal(plan.toneMap, false);
    assert.doesNotMatch(buildEncodeArgs({ inputPath: '/in.mp4', media, plan, outputs }).join(' '), /tonemap/);
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
    for (const f of [...Object.values(outputs.video), outputs.audio.audio])
      assert.ok(args.includes(`file:${f}`), f);
    assert.ok(args.includes('pipe:1'), 'progress on stdout');
  });
  test("audio the plan copies keeps the source's stream: no encoder, no resampling", () => {
    const stereo: MediaInfo = {
      ...media,
      audio: { index: 0, codec: 'aac', profile: 'LC', channels: 2, sampleRate: 44_100, bitRate: 128_000 },
    };
    const copied = buildEncodeArgs({
      inputPath: '/in.mp4',
      media: stereo,
      plan: planEncode(stereo, testEncodeSettings),
      outputs,
    });
    const flagged = (flag: string) => copied.filter((_, i) => copied[i - 1] === flag);
    assert.deepEqual(flagged('-c:a'), ['copy']);
    for (const flag of ['-b:a', '-ac', '-ar']) assert.ok(!copied.includes(flag), flag);
  });
  test('a variable frame rate keeps its timestamps, without B-frames; a constant one keeps the default', () => {
    assert.ok(!args.includes('-bf'));
    assert.deepEqual(after('-fps_mode'), ['vfr'], 'the poster only (an image output)');
    const vfr: MediaInfo = { ...media, video: { ...media.video, frameRate: 7.2, variableFrameRate: true } };
    const kept = buildEncodeArgs({
      inputPath: '/in.mp4',
      media: vfr,
      plan: planEncode(vfr, testEncodeSettings),
      outputs,
    });
    const flagged = (flag: string) => kept.filter((_, i) => kept[i - 1] === flag);
    assert.deepEqual(flagged('-fps_mode'), ['passthrough', 'passthrough', 'vfr'], 'every rung; the poster');
    assert.deepEqual(flagged('-enc_time_base'), ['-1', '-1']);
    assert.deepEqual(flagged('-r'), ['7.2', '7.2']);
    assert.deepEqual(flagged('-bf'), ['0', '0']);
    // With the source's time base probed, that one: `-1` is not found once the poster's primer is an input.
    const probed: MediaInfo = { ...vfr, video: { ...vfr.video, timeBase: '1/15360' } };
    const timed = buildEncodeArgs({
      inputPath: '/in.mp4',
      media: probed,
      plan: planEncode(probed, testEncodeSettings),
      outputs,
    });
    assert.deepEqual(
      timed.filter((_, i) => timed[i - 1] === '-enc_time_base'),
      ['1/15360', '1/15360'],
    );
  });
  test("a variable frame rate's last frame is held to the video's end, where the container states it", () => {
    const graphOf = (m: MediaInfo) => {
      const a = buildEncodeArgs({
        inputPath: '/in',
        media: m,
        plan: planEncode(m, testEncodeSettings),
        outputs,
      });
      return a[a.indexOf('-filter_complex') + 1]!;
    };
    const video = { ...media.video, frameRate: 8, variableFrameRate: true, duration: 8.5, startTime: 0 };
    const mp4: MediaInfo = { ...media, startTime: 0, formatName: 'mov,mp4,m4a,3gp,3g2,mj2', video };
    assert.match(
      graphOf(mp4),
      /tpad=stop_mode=clone:stop=1,select='not\(between\(t\\,8\.500000-0\.001\\,8\.500000\+0\.001\)\)\+gt\(8\.500000-0\.125000-prev_selected_t\\,0\.125000\/2\)',setpts=/,
    );
    // MPEG-TS states where the last frame starts: the filter would take that frame for its copy.
    assert.doesNotMatch(graphOf({ ...mp4, formatName: 'mpegts' }), /tpad/);
    assert.doesNotMatch(graphOf({ ...mp4, video: { ...video, variableFrameRate: false } }), /tpad/);
  });
  test('the poster is chosen among the frames of its window that are not nearly black', () => {
    const poster = after('-filter_complex')[0]!
      .split(';')
      .find((c) => c.startsWith('[p]'))!;
    assert.match(
      poster,
      /,trim=start=4\.000:[^,]*,blackframe=amount=0:threshold=32,metadata=mode=select:key=lavfi\.blackframe\.pblack:value=90:function=less,thumbnail=n=12,scale=1280:720:/,
    );
  });
  test('no metadata of the source is written: the packager labels each track with its language', () => {
    assert.ok(!args.some((a) => a.startsWith('-metadata')));
  });
  test('every audio track is an output of its own, copied or encoded from its own stream', () => {
    const two: MediaInfo = {
      ...media,
      audioStreams: [
        { index: 0, codec: 'aac', channels: 6, sampleRate: 48000, language: 'eng' },
        {
          index: 2,
          codec: 'aac',
          profile: 'LC',
          channels: 2,
          sampleRate: 48000,
          bitRate: 96_000,
          language: 'fra',
        },
      ],
    };
    const twoPlan = planEncode(two, testEncodeSettings);
    const files = { ...outputs, audio: { audio: '/w/e/audio.mp4', audio_2: '/w/e/audio_2.mp4' } };
    const a = buildEncodeArgs({ inputPath: '/in.mp4', media: two, plan: twoPlan, outputs: files });
    const flagged = (flag: string) => a.filter((_, i) => a[i - 1] === flag);
    assert.deepEqual(flagged('-map').slice(-2), ['0:0', '0:2']);
    assert.deepEqual(flagged('-c:a'), ['aac', 'copy']);
    // The image outputs' black primers are lavfi inputs; the source is read once.
    assert.equal(flagged('-i').filter((x) => x.startsWith('file:')).length, 1, 'one input, decoded once');
  });
  test('progress lines give seconds of output', () => {
    assert.equal(parseProgressLine('out_time_us=2500000'), 2.5);
    assert.equal(parseProgressLine('out_time_ms=1000000'), 1);
    assert.equal(parseProgressLine('frame=12'), undefined);
  });
});
