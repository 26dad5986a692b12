import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { TaskFailure } from '../../src/domain/failures.js';
import { parseProbeOutput, probe } from '../../src/pipeline/probe.js';
import { sharedMediaDir } from '../helpers/media.js';

describe('probe', () => {
  test('rotation and non-square pixels give the displayed size', async () => {
    const iphone = await probe(path.join(sharedMediaDir, 'iphone_rot90_audio_first.mov'), {
      ffprobe: 'ffprobe',
    });
    assert.deepEqual([iphone.video.width, iphone.video.height, iphone.video.rotation], [320, 568, 90]);
    assert.equal(iphone.audio?.index, 0, 'audio is stream 0 in this file');
    assert.equal(iphone.video.index, 1);
    const sar = await probe(path.join(sharedMediaDir, 'sar_2x1_noaudio.mp4'), { ffprobe: 'ffprobe' });
    assert.deepEqual([sar.video.width, sar.video.height], [1280, 360]);
    assert.equal(sar.audio, undefined);
    const vfr = await probe(path.join(sharedMediaDir, 'screen_vfr_3026x1386_noaudio.mp4'), {
      ffprobe: 'ffprobe',
    });
    assert.ok(vfr.video.variableFrameRate);
  });
  test('no video stream, or no size, is a permanent not_a_video failure', () => {
    assert.throws(
      () =>
        parseProbeOutput({
          streams: [{ index: 0, codec_type: 'audio', codec_name: 'aac' }],
          format: { duration: '3' },
        }),
      (e: unknown) =>
        e instanceof TaskFailure && e.code === 'not_a_video' && e.permanent && /no video/.test(e.message),
    );
    assert.throws(
      () =>
        parseProbeOutput({
          streams: [{ index: 0, codec_type: 'video', codec_name: 'h264', width: 0, height: 0 }],
          format: { duration: '3' },
        }),
      /no picture size/,
    );
  });
  test('a video stream of a codec FFmpeg does not know is said to be one', () => {
    assert.throws(
      () =>
        parseProbeOutput({
          streams: [{ index: 0, codec_type: 'video', width: 640, height: 360 }],
          format: { duration: '3' },
        }),
      /the video stream is in a format FFmpeg cannot decode/,
    );
  });
  test('streams are chosen as FFmpeg would: default first, then most pixels or channels, known codecs only', () => {
    const media = parseProbeOutput({
      streams: [
        { index: 0, codec_type: 'video', codec_name: 'h264', width: 160, height: 120 },
        { index: 1, codec_type: 'video', codec_name: 'h264', width: 1280, height: 720 },
        { index: 2, codec_type: 'audio', codec_name: 'none', channels: 6 },
        { index: 3, codec_type: 'audio', codec_name: 'aac', channels: 2 },
        { index: 4, codec_type: 'audio', codec_name: 'aac', channels: 1, disposition: { default: 1 } },
      ],
      format: { duration: '3' },
    });
    assert.equal(media.video.index, 1, 'the larger picture');
    assert.equal(media.audio?.index, 4, 'the default track, over more channels; never the undecodable one');
  });
  test("the audio's language is an ISO 639 code or nothing: `und` and free text are not taken", () => {
    const language = (tag?: string) =>
      parseProbeOutput({
        streams: [
          { index: 0, codec_type: 'video', codec_name: 'h264', width: 320, height: 240 },
          {
            index: 1,
            codec_type: 'audio',
            codec_name: 'aac',
            channels: 2,
            tags: tag ? { language: tag } : {},
          },
        ],
        format: { duration: '3' },
      }).audio?.language;
    assert.equal(language('fra'), 'fra');
    assert.equal(language('EN'), 'en');
    for (const tag of [undefined, 'und', 'English', 'en-US', 'x,y', '--default'])
      assert.equal(language(tag), undefined, tag);
  });
  test('cover art is not taken for the video stream', () => {
    assert.throws(
      () =>
        parseProbeOutput({
          streams: [
            { index: 0, codec_type: 'audio', codec_name: 'aac' },
            {
              index: 1,
              codec_type: 'video',
              codec_name: 'mjpeg',
              width: 600,
              height: 600,
              disposition: { attached_pic: 1 },
            },
          ],
          format: { duration: '200' },
        }),
      /audio but no video/,
    );
  });
});
