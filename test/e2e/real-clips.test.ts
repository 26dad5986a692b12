import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { audioPacketsDigest, checkDashPackage, joinRepresentation } from '../helpers/package-check.js';
import { sharedMediaDir } from '../helpers/media.js';
import { startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';

const run = promisify(execFile);

/** What each real clip must give: the clips in ../shared/media break naive pipelines in different ways. */
const expectations: {
  file: string;
  heights: number[];
  audio: boolean;
  /** The source's AAC packaged as it is (AAC-LC mono/stereo at 44.1/48 kHz near AUDIO_BITRATE). */
  audioCopied?: boolean;
  size?: [number, number];
  /** Seconds the source shows one frame at most, when more than a segment's tolerance (a pause). */
  longestFrame?: number;
}[] = [
  // AAC 5.1: downmixed to stereo.
  { file: 'bbb_720p_5s_h264_aac51.mp4', heights: [360, 720], audio: true, size: [1280, 720] },
  // VP8 + Vorbis in WebM.
  { file: 'bbb_720p_30s_vp8_vorbis.webm', heights: [360, 720], audio: true, size: [1280, 720] },
  // 568x320 stored with a -90° display matrix, audio as stream 0: a portrait 320x568 source, smaller than 360p.
  // Its mono 44.1 kHz AAC is copied.
  {
    file: 'iphone_rot90_audio_first.mov',
    heights: [320],
    audio: true,
    audioCopied: true,
    size: [320, 568],
  },
  // Rotated 180°: same shape, upright pixels; mono 48 kHz AAC, copied.
  {
    file: 'phone_rot180_vfr_720p.mp4',
    heights: [360, 720],
    audio: true,
    audioCopied: true,
    size: [1280, 720],
  },
  // Extreme variable frame rate, odd size, no audio; its last frame is shown for 1.57 s.
  {
    file: 'screen_vfr_3026x1386_noaudio.mp4',
    heights: [360, 720],
    audio: false,
    size: [1572, 720],
    longestFrame: 1.57,
  },
  // 640x360 stored with 2:1 pixels: displayed 1280x360, delivered with square pixels.
  { file: 'sar_2x1_noaudio.mp4', heights: [360], audio: false, size: [1280, 360] },
  // 179/6 fps camera footage, 40 s.
  { file: 'bottle_29.83fps_noaudio.mp4', heights: [360], audio: false },
];

describe('the real clips in ../shared/media convert to packages that validate and decode', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ X264_PRESET: 'ultrafast' });
  });
  after(async () => {
    await svc.close();
  });

  for (const clip of expectations) {
    test(clip.file, async () => {
      await copyFile(path.join(sharedMediaDir, clip.file), path.join(svc.inputDir, clip.file));
      const { doc } = await waitForFinal(svc.url, await submit(svc.url, clip.file), 240_000);
      assert.equal(doc.status, 'completed', doc.error ?? '');
      const top = doc.output!.renditions[doc.output!.renditions.length - 1]!;
      if (clip.size) assert.deepEqual([top.width, top.height], clip.size, 'top rendition size');
      const prefix = path.join(svc.outputDir, doc.output!.prefix);
      const mpd = await checkDashPackage(prefix, {
        heights: clip.heights,
        audio: clip.audio,
        segmentDuration: 4,
        segmentSlack: clip.longestFrame,
      });
      const audio = mpd.representations.find((r) => r.contentType === 'audio');
      if (audio) {
        const source = path.join(svc.inputDir, clip.file);
        const joined = await joinRepresentation(prefix, audio, svc.root);
        const same = (await audioPacketsDigest(joined)) === (await audioPacketsDigest(source));
        assert.equal(
          same,
          !!clip.audioCopied,
          "the package's audio packets are the source's exactly when copied",
        );
        if (!clip.audioCopied) {
          const { stdout } = await run('ffprobe', [
            ...[
              '-v',
              'error',
              '-select_streams',
              'a:0',
              '-show_entries',
              'stream=codec_name,channels,sample_rate',
            ],
            ...['-of', 'csv=p=0', joined],
          ]);
          assert.equal(stdout.trim(), 'aac,48000,2', 'encoded audio: AAC stereo 48 kHz');
        }
      }
      const video = mpd.representations.filter((r) => r.contentType === 'video');
      // Every frame of the source is shown (a variable frame rate put on a constant grid lost the fast ones).
      const frames = async (file: string) => {
        const { stdout } = await run('ffprobe', [
          ...['-v', 'error', '-select_streams', 'v:0', '-count_packets'],
          ...['-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', file],
        ]);
        return Number(stdout.trim().replace(/,$/, ''));
      };
      const sourceFrames = await frames(path.join(svc.inputDir, clip.file));
      const topRep = video.at(-1)!;
      const { stdout: flags } = await run('ffprobe', [
        ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=flags', '-of', 'csv=p=0'],
        await joinRepresentation(prefix, topRep, svc.root),
      ]);
      const packets = flags.trim().split('\n');
      assert.ok(
        packets.length >= sourceFrames,
        `${packets.length} frames packaged of the source's ${sourceFrames}`,
      );
      // One keyframe per segment, at its start: x264 adds none of its own (a wasted one before a forced one).
      const keyframes = packets.filter((f) => f.startsWith('K')).length;
      assert.equal(keyframes, topRep.segments.length, 'a keyframe per segment, and no other');
      // HLS: a variant's BANDWIDTH is its peak, never below its average (RFC 8216).
      const master = await readFile(path.join(prefix, 'master.m3u8'), 'utf8');
      for (const inf of master.split('\n').filter((l) => l.startsWith('#EXT-X-STREAM-INF:'))) {
        const peak = Number(/[:,]BANDWIDTH=(\d+)/.exec(inf)?.[1]);
        const average = Number(/AVERAGE-BANDWIDTH=(\d+)/.exec(inf)?.[1]);
        assert.ok(peak >= average, `BANDWIDTH ${peak} ≥ AVERAGE-BANDWIDTH ${average}`);
      }
      const total = video[0]!.durations.reduce((a, b) => a + b, 0);
      assert.ok(
        Math.abs(total - mpd.duration) < 0.5,
        `video lasts ${total.toFixed(2)} s of ${mpd.duration} s`,
      );
      // Nothing cut at the end: a variable frame rate's last frame is shown for its own time (a screen
      // recording's last picture, held 1.6 s, was shown for an average frame's 0.14 s).
      const { stdout: declared } = await run('ffprobe', [
        ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=duration', '-of', 'csv=p=0'],
        path.join(svc.inputDir, clip.file),
      ]);
      const sourceVideo = Number(declared.trim());
      if (Number.isFinite(sourceVideo) && sourceVideo > 0) {
        assert.ok(
          total > sourceVideo - 0.1,
          `video lasts ${total.toFixed(3)} s, the source's ${sourceVideo.toFixed(3)} s`,
        );
      }
    });
  }
});
