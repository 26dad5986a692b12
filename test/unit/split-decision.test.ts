import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideSplit, splitSettings } from '../../src/jobs/split-decision.js';
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

  test("a split task's progress, stage and ETA aggregate its chunk jobs", () => {
    const agg = stepsProgress({ stage: 'encode', from: 4, to: 90 }, [1, 0.5, 0, 0.5], 0, 10_000);
    assert.deepEqual(agg, { stage: 'encode', progress: 47, etaSeconds: 10, chunks: { total: 4, done: 1 } });
  });
});
