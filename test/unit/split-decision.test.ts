import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideSplit, splitSettings } from '../../src/jobs/split-decision.js';
import { isLastChunk, planChunks, videoSpan } from '../../src/pipeline/chunks/plan-chunks.js';
import { planEncode } from '../../src/pipeline/plan.js';
import { stepsProgress } from '../../src/queue/worker-policy.js';
import { mediaInfo, testEncodeSettings } from '../helpers/media-info.js';

const config = { chunks: { seconds: 60, minInputSeconds: 300 } };

describe('the split decision', () => {
  const long = { ...mediaInfo(1280, 720), duration: 610 };
  const plan = planEncode(long, testEncodeSettings);

  test('CHUNK_MIN_INPUT_SECONDS and CHUNK_SECONDS, unless the request gives chunk_seconds (0: never)', () => {
    assert.deepEqual(splitSettings(config, {}), { chunkSeconds: 60, minInputSeconds: 300 });
    assert.deepEqual(splitSettings(config, { chunkSeconds: 20 }), { chunkSeconds: 20, minInputSeconds: 20 });
    assert.deepEqual(decideSplit({ config, request: { chunkSeconds: 0 }, media: long, plan }).chunks, []);
    const short = { ...long, duration: 299 };
    const unsplit = decideSplit({
      config,
      request: {},
      media: short,
      plan: planEncode(short, testEncodeSettings),
    });
    assert.deepEqual(unsplit.chunks, []);
    assert.match(unsplit.reason, /not longer than 300 s/);
  });

  test('chunks of whole segments, the last one short; a container without an index is not split', () => {
    const { chunks, reason } = decideSplit({ config, request: {}, media: long, plan });
    assert.equal(chunks.length, 11);
    assert.deepEqual(chunks.at(-1), { index: 10, start: 600, end: 610 });
    assert.match(reason, /11 chunks of 60 s/);
    // 62 s asked, 4 s segments: 64 s chunks.
    const odd = decideSplit({ config, request: { chunkSeconds: 62 }, media: long, plan });
    assert.equal(odd.chunks[1]!.start, 64);
    const flv = { ...long, formatName: 'flv' };
    const refused = decideSplit({
      config,
      request: {},
      media: flv,
      plan: planEncode(flv, testEncodeSettings),
    });
    assert.deepEqual(refused.chunks, []);
    assert.match(refused.reason, /\(flv\) has no index/);
  });

  test("video that ends before the audio: the chunks divide the video, the input's length decides the split", () => {
    // 290 s of video, 310 s of audio: the input is longer than 300 s, so split; the last chunk ends with the
    // video (and reads to the end, holding its last frame).
    const held = { ...mediaInfo(1280, 720, { duration: 290, startTime: 0 }), duration: 310 };
    held.audio = { ...held.audio!, duration: 310, startTime: 0 };
    const heldPlan = planEncode(held, testEncodeSettings);
    assert.equal(heldPlan.holdLastFrame, 20);
    const { chunks, reason } = decideSplit({ config, request: {}, media: held, plan: heldPlan });
    assert.deepEqual(
      chunks.map((c) => `${c.start}-${c.end}`),
      ['0-60', '60-120', '120-180', '180-240', '240-290'],
    );
    assert.match(reason, /5 chunks of 60 s/);
    // 8 s asked for, of 20 s whose video lasts 14 s: no chunk over the audio's last 6 s.
    const short = { ...mediaInfo(1280, 720, { duration: 14, startTime: 0 }), duration: 20 };
    short.audio = { ...short.audio!, duration: 20, startTime: 0 };
    const split = decideSplit({
      config,
      request: { chunkSeconds: 8 },
      media: short,
      plan: planEncode(short, testEncodeSettings),
    });
    assert.deepEqual(
      split.chunks.map((c) => `${c.start}-${c.end}`),
      ['0-8', '8-14'],
    );
  });

  test('over the video only: a chunk past its end would hold no frame; the last one reads to the end', () => {
    // 10 s of video from 0.5 s in (the audio first), 13 s of input: 10 s of the video's timeline.
    const media = { ...mediaInfo(320, 180, { duration: 10, startTime: 0.5 }), duration: 13 };
    media.audio = { ...media.audio!, duration: 13, startTime: 0 };
    const plan = planEncode(media, { ...testEncodeSettings, segmentDuration: 2 });
    assert.equal(videoSpan(media, plan), 10);
    const chunks = planChunks({
      duration: media.duration,
      videoSeconds: videoSpan(media, plan),
      segmentSeconds: 2,
      chunkSeconds: 4,
      minInputSeconds: 0,
    });
    assert.deepEqual(
      chunks.map((c) => `${c.start}-${c.end}`),
      ['0-4', '4-8', '8-10'],
    );
    assert.deepEqual(
      chunks.map((c) => isLastChunk(c, media, plan)),
      [false, false, true],
    );
    // The input's length decides: 13 s is longer than 12, though the video is not.
    assert.equal(
      planChunks({ duration: 13, videoSeconds: 10, segmentSeconds: 2, chunkSeconds: 4, minInputSeconds: 12 })
        .length,
      3,
    );
  });

  test("a split task's progress, stage and ETA aggregate its chunk jobs", () => {
    const agg = stepsProgress({ stage: 'encode', from: 4, to: 90 }, [1, 0.5, 0, 0.5], 0, 10_000);
    assert.deepEqual(agg, { stage: 'encode', progress: 47, etaSeconds: 10, chunks: { total: 4, done: 1 } });
  });
});
