import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { TaskFailure } from '../../src/errors.js';
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
      () => parseProbeOutput({ streams: [{ index: 0, codec_type: 'audio' }], format: { duration: '3' } }),
      (e: unknown) =>
        e instanceof TaskFailure && e.code === 'not_a_video' && e.permanent && /no video/.test(e.message),
    );
    assert.throws(
      () =>
        parseProbeOutput({
          streams: [{ index: 0, codec_type: 'video', width: 0, height: 0 }],
          format: { duration: '3' },
        }),
      /no picture size/,
    );
  });
  test('cover art is not taken for the video stream', () => {
    assert.throws(
      () =>
        parseProbeOutput({
          streams: [
            { index: 0, codec_type: 'audio' },
            { index: 1, codec_type: 'video', width: 600, height: 600, disposition: { attached_pic: 1 } },
          ],
          format: { duration: '200' },
        }),
      /audio but no video/,
    );
  });
});
