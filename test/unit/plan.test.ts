import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MediaInfo } from '../../src/pipeline/media-info.js';
import { defaultLadder, planEncode, type EncodeSettings } from '../../src/pipeline/plan.js';
import { mediaInfo, testEncodeSettings } from '../helpers/media-info.js';

const settings = testEncodeSettings;
const media = mediaInfo;

const sizes = (m: MediaInfo, s = settings) =>
  planEncode(m, s).renditions.map((r) => `${r.width}x${r.height}`);

describe('planEncode', () => {
  test('a 1080p source gets both default rungs', () => {
    assert.deepEqual(sizes(media(1920, 1080)), ['640x360', '1280x720']);
  });
  test('never upscales: 640x360 gets only 360p, 400p only 360p (too close to it for a rung of its own)', () => {
    assert.deepEqual(sizes(media(640, 360)), ['640x360']);
    assert.deepEqual(sizes(media(710, 400)), ['640x360']);
  });
  test('a source between two rungs gets a top rung at its own size: 480p, and 718p short of 720p', () => {
    assert.deepEqual(sizes(media(854, 480)), ['640x360', '854x480']);
    const plan = planEncode(media(1280, 718), settings);
    assert.deepEqual(
      plan.renditions.map((r) => [r.name, r.width, r.height]),
      [
        ['video_360p', 642, 360],
        ['video_718p', 1280, 718],
      ],
    );
    assert.ok(plan.sourceSizedRung);
    const top = plan.renditions[1]!.bitrate;
    assert.ok(top > 2_700_000 && top <= 2_800_000, `718p at about 720p's bitrate: ${top}`);
    assert.equal(planEncode(media(854, 480), settings).renditions[1]!.bitrate, 1_244_444);
  });
  test('a source smaller than every rung gets one rung at its own (even) size', () => {
    const plan = planEncode(media(321, 241), settings);
    assert.deepEqual(
      plan.renditions.map((r) => [r.width, r.height]),
      [[320, 240]],
    );
    assert.ok(plan.sourceSizedRung);
    assert.ok(plan.renditions[0]!.bitrate < 550_000 && plan.renditions[0]!.bitrate >= 150_000);
  });
  test('portrait keeps its orientation; the rung is the short side', () => {
    assert.deepEqual(sizes(media(1080, 1920)), ['360x640', '720x1280']);
  });
  test('odd aspect ratios give even sizes with the shape kept', () => {
    assert.deepEqual(sizes(media(3026, 1386)), ['786x360', '1572x720']);
  });
  test('capped VBR: maxrate and bufsize follow the target', () => {
    const r = planEncode(media(1280, 720), settings).renditions[1]!;
    assert.deepEqual([r.bitrate, r.maxrate, r.bufsize], [2_800_000, 2_800_000, 5_600_000]);
  });
  test('keyframe interval is the segment duration at the frame rate; fast sources are limited', () => {
    assert.equal(planEncode(media(1280, 720, { frameRate: 25 }), settings).gopFrames, 100);
    const fast = planEncode(media(1280, 720, { frameRate: 120 }), settings);
    assert.equal(fast.frameRateLimit, 60);
    assert.equal(fast.gopFrames, 240);
  });
  test("x264's longest keyframe interval is above any segment's frames: the forced keyframes are the only ones", () => {
    // 179/6 fps × 4 s = 119.3 frames: a bound of 119 put a keyframe one frame before every third forced one.
    const camera = planEncode(media(1280, 720, { frameRate: 179 / 6 }), settings);
    assert.equal(camera.keyint, 121);
    assert.equal(camera.keepFrameTiming, false);
    assert.equal(planEncode(media(1280, 720, { frameRate: 30 }), settings).keyint, 121);
    // A variable rate keeps its frames' times, and may come in bursts up to the highest rate let through.
    const screen = planEncode(media(1280, 720, { frameRate: 7.2, variableFrameRate: true }), settings);
    assert.equal(screen.keepFrameTiming, true);
    assert.equal(screen.keyint, 241);
    const fastVariable = planEncode(media(1280, 720, { frameRate: 120, variableFrameRate: true }), settings);
    assert.equal(fastVariable.keepFrameTiming, false, 'reduced to 60 fps by a filter: a constant rate');
  });
  test('audio is planned only when the source has it', () => {
    assert.equal(planEncode(media(1280, 720), settings).audioTracks.length, 1);
    assert.deepEqual(planEncode(media(1280, 720, {}, false), settings).audioTracks, []);
  });
  test('every audio track is planned, with BCP 47 languages, labels and exactly one default', () => {
    const tracks = (extra: Partial<EncodeSettings> = {}, streams = threeLanguages) =>
      planEncode({ ...media(1280, 720), audioStreams: streams }, { ...settings, ...extra }).audioTracks;
    const threeLanguages: NonNullable<MediaInfo['audioStreams']> = [
      { index: 1, codec: 'aac', channels: 2, sampleRate: 48_000, language: 'eng' },
      { index: 2, codec: 'ac3', channels: 6, sampleRate: 48_000, language: 'fre', isDefault: true },
      { index: 3, codec: 'aac', channels: 2, sampleRate: 48_000, language: 'eng', describesVideo: true },
      { index: 4, codec: 'aac', channels: 2, sampleRate: 48_000, title: 'Commentary, "director"' },
    ];
    const all = tracks();
    assert.deepEqual(
      all.map((a) => [a.name, a.sourceIndex, a.language, a.label, a.isDefault, a.describesVideo]),
      [
        ['audio', 1, 'en', 'English', false, false],
        ['audio_2', 2, 'fr', 'Français', true, false],
        ['audio_3', 3, 'en', 'English (audio description)', false, true],
        ['audio_4', 4, 'und', 'Commentary director', false, false],
      ],
    );
    assert.deepEqual(all[1]!.channels, 2, '5.1 encoded to stereo');
    const defaults = (t: ReturnType<typeof tracks>) => t.filter((a) => a.isDefault).map((a) => a.sourceIndex);
    assert.deepEqual(
      defaults(tracks({ defaultAudioLanguage: 'en' })),
      [1],
      'the language asked for, not its AD',
    );
    assert.deepEqual(
      defaults(tracks({ defaultAudioLanguage: 'deu' })),
      [2],
      'none in it: the source default',
    );
    assert.deepEqual(
      defaults(
        tracks(
          {},
          threeLanguages.map((a) => ({ ...a, isDefault: false })),
        ),
      ),
      [1],
      'no default in the source: the first',
    );
    const many = Array.from({ length: 40 }, (_, i) => ({
      index: i + 1,
      codec: 'aac',
      channels: 2,
      sampleRate: 48_000,
      isDefault: i === 30,
    }));
    const capped = tracks({}, many);
    assert.equal(capped.length, 16, 'at most 16 tracks of a file with 40');
    assert.deepEqual(defaults(capped), [31], 'the default among them');
    const first = tracks({ audioTracks: 'first', defaultAudioLanguage: 'en-GB' });
    assert.deepEqual(
      first.map((a) => [a.name, a.sourceIndex, a.isDefault]),
      [['audio', 1, true]],
    );
  });
  test("the source's AAC is copied when every player takes it at about the configured rate", () => {
    const withAudio = (audio: Partial<NonNullable<MediaInfo['audio']>>) => ({
      ...media(1280, 720),
      audio: {
        index: 1,
        codec: 'aac',
        profile: 'LC',
        channels: 2,
        sampleRate: 48_000,
        bitRate: 160_000,
        ...audio,
      },
    });
    const audioOf = (m: MediaInfo, s = settings) => {
      const { bitrate, channels, sampleRate, copy } = planEncode(m, s).audioTracks[0]!;
      return { bitrate, channels, sampleRate, copy };
    };
    assert.deepEqual(audioOf(withAudio({})), {
      bitrate: 160_000,
      channels: 2,
      sampleRate: 48_000,
      copy: true,
    });
    assert.deepEqual(audioOf(withAudio({ channels: 1, sampleRate: 44_100, bitRate: 64_000 })), {
      bitrate: 64_000,
      channels: 1,
      sampleRate: 44_100,
      copy: true,
    });
    const encoded = { bitrate: 128_000, channels: 2, sampleRate: 48_000, copy: false };
    for (const other of [
      { channels: 6 },
      { profile: 'HE-AAC' },
      { codec: 'opus', profile: undefined },
      { sampleRate: 32_000 },
      { bitRate: 256_000 },
      { bitRate: undefined },
    ]) {
      assert.deepEqual(audioOf(withAudio(other)), encoded, JSON.stringify(other));
    }
    assert.deepEqual(audioOf(withAudio({}), { ...settings, audioCopy: false }), encoded, 'AUDIO_COPY=false');
  });
  test('a three-rung ladder with 1080p on a 4K source', () => {
    const ladder = [...defaultLadder, { height: 1080, bitrate: 5_000_000 }];
    assert.deepEqual(sizes(media(3840, 2160), { ...settings, ladder }), ['640x360', '1280x720', '1920x1080']);
  });
});
