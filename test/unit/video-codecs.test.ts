import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildEncodeArgs } from '../../src/pipeline/ffmpeg-args.js';
import { planEncode } from '../../src/pipeline/plan.js';
import { mediaInfo, testEncodeSettings } from '../helpers/media-info.js';

const media = mediaInfo(1920, 1080);
const settings = { ...testEncodeSettings, codecs: ['h264' as const, 'av1' as const, 'hevc' as const] };

describe('video codecs in the plan and the encode', () => {
  const plan = planEncode(media, settings);

  test('each codec gets the whole ladder at its share of the rung, smallest rung first', () => {
    assert.deepEqual(
      plan.renditions.map((r) => `${r.name} ${r.codec} ${r.width}x${r.height} ${r.bitrate} ${r.maxrate}`),
      [
        'video_360p h264 640x360 550000 550000',
        'video_av1_360p av1 640x360 330000 330000',
        'video_hevc_360p hevc 640x360 385000 385000',
        'video_720p h264 1280x720 2800000 2800000',
        'video_av1_720p av1 1280x720 1680000 1680000',
        'video_hevc_720p hevc 1280x720 1960000 1960000',
      ],
    );
    assert.equal(plan.keyframesByCount, true, 'SVT-AV1 cannot be told where: every encoder counts frames');
  });

  test('one scaler per rung, its frames split among the codecs; every encoder keyframes on the same grid', () => {
    const outputs = {
      video: Object.fromEntries(plan.renditions.map((r) => [r.name, `/w/${r.name}.mp4`])),
      audio: {},
    };
    const args = buildEncodeArgs({ inputPath: '/in.mp4', media, plan, outputs });
    const graph = args[args.indexOf('-filter_complex') + 1]!;
    assert.equal(graph.match(/zscale=w=1280:h=720/g)?.length, 1, graph);
    assert.equal(graph.match(/zscale=w=640:h=360/g)?.length, 1, graph);
    assert.match(graph, /zscale=w=1280:h=720[^;]*split=4\[v3\]\[v4\]\[v5\]\[c1\]/);
    assert.match(graph, /zscale=w=640:h=360[^;]*split=3\[v0\]\[v1\]\[v2\]/);
    const encoders = args.filter((_, i) => args[i - 1] === '-c:v');
    assert.deepEqual(encoders, ['libx264', 'libsvtav1', 'libx265', 'libx264', 'libsvtav1', 'libx265']);
    const forced = args.filter((_, i) => args[i - 1] === '-force_key_frames');
    assert.deepEqual(new Set(forced), new Set([`expr:eq(mod(n,${plan.gopFrames}),0)`]));
    assert.equal(forced.length, 4, 'x264 and x265 are forced; SVT-AV1 has a GOP of one segment');
    // x264's bound is above a segment (forced keyframes only); SVT-AV1's GOP is a segment; x265's is in its params.
    const g = args.filter((_, i) => args[i - 1] === '-g');
    assert.deepEqual(g, [plan.keyint, plan.gopFrames, plan.keyint, plan.gopFrames].map(String));
    assert.deepEqual(
      args.filter((_, i) => args[i - 1] === '-tag:v'),
      ['hvc1', 'hvc1'],
    );
  });

  test('keyframes by count are never short of a segment (the packager would cut at the next one)', () => {
    const odd = planEncode(mediaInfo(1280, 720, { frameRate: 29.83 }), settings);
    assert.equal(odd.gopFrames, 120, '119 frames would be 3.99 s');
    const exact = planEncode(mediaInfo(1280, 720, { frameRate: 30 }), settings);
    assert.equal(exact.gopFrames, 120);
  });

  test('H.264 alone keeps keyframes by time', () => {
    const h264 = planEncode(media, testEncodeSettings);
    assert.equal(h264.keyframesByCount, false);
    assert.deepEqual(h264.codecs, ['h264']);
  });

  test('a variable frame rate is encoded without AV1, whose keyframes cannot follow its times', () => {
    const vfr = planEncode(mediaInfo(1280, 720, { variableFrameRate: true }), settings);
    assert.deepEqual(vfr.codecs, ['h264', 'hevc']);
    assert.equal(vfr.keyframesByCount, false);
    assert.match(vfr.codecsLeftOut[0]!.reason, /frame rate varies/);
    const onlyAv1 = planEncode(mediaInfo(1280, 720, { variableFrameRate: true }), {
      ...settings,
      codecs: ['av1'],
    });
    assert.deepEqual(onlyAv1.codecs, ['h264'], 'H.264 when nothing else is left');
  });

  test('AV1 rungs under 64 pixels a side are left out, and said so', () => {
    const small = planEncode(mediaInfo(256, 144), {
      ...settings,
      codecs: ['h264', 'av1'],
      ladder: [
        { height: 36, bitrate: 100_000 },
        { height: 144, bitrate: 300_000 },
      ],
    });
    assert.deepEqual(
      small.renditions.map((r) => r.name),
      ['video_36p', 'video_144p', 'video_av1_144p'],
    );
    assert.deepEqual(
      small.codecsLeftOut.map((l) => l.codec),
      ['av1'],
    );
  });
});
