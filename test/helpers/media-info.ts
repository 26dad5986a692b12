import type { MediaInfo } from '../../src/pipeline/media-info.js';
import { defaultLadder, type EncodeSettings } from '../../src/pipeline/plan.js';

/** The service's default encoder settings, DASH only, for tests of planning and argument building. */
export const testEncodeSettings: EncodeSettings = {
  ladder: defaultLadder,
  segmentDuration: 4,
  preset: 'superfast',
  maxrateFactor: 1,
  bufsizeFactor: 2,
  audioBitrate: 128_000,
  audioCopy: true,
  maxFrameRate: 60,
  formats: ['dash'],
  scaler: 'zscale',
  codecs: ['h264'],
};

/** What probe would report for a plain progressive H.264 source of this size (video stream 0, audio 1). */
export function mediaInfo(
  width: number,
  height: number,
  extra: Partial<MediaInfo['video']> = {},
  audio = true,
): MediaInfo {
  return {
    duration: 10,
    startTime: 0,
    formatName: 'mp4',
    video: {
      index: 0,
      codec: 'h264',
      codedWidth: width,
      codedHeight: height,
      width,
      height,
      rotation: 0,
      sampleAspectRatio: 1,
      frameRate: 30,
      variableFrameRate: false,
      pixelFormat: 'yuv420p',
      interlaced: false,
      ...extra,
    },
    audio: audio ? { index: 1, codec: 'aac', channels: 2, sampleRate: 48000 } : undefined,
  };
}
