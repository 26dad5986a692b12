import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import {
  annotateChunks,
  costliestFirst,
  readChunkStarts,
  timestampJump,
  UnsplittableInput,
} from '../../src/pipeline/chunks/chunk-starts.js';
import { planChunks } from '../../src/pipeline/chunks/plan-chunks.js';
import { planEncode } from '../../src/pipeline/plan.js';
import { probeSource } from '../../src/pipeline/probe.js';
import { defaultTools } from '../../src/pipeline/tools.js';
import { createLogger } from '../../src/process/logger.js';
import { testEncodeSettings } from '../helpers/media-info.js';

const run = promisify(execFile);

describe('costliestFirst', () => {
  const chunks = [10, 30, 30, 5].map((bytes, index) => ({
    index,
    start: index * 4,
    end: index * 4 + 4,
    bytes,
  }));
  test('the chunk spanning the most bytes first, the earlier one among equals', () => {
    assert.deepEqual(
      costliestFirst(chunks).map((c) => c.index),
      [1, 2, 0, 3],
    );
  });
  test('a chunk without its bytes: the chunks in their own order', () => {
    const some = chunks.map((c, i) => (i === 2 ? { index: c.index, start: c.start, end: c.end } : c));
    assert.deepEqual(costliestFirst(some), some);
  });
});

describe('annotateChunks', () => {
  const chunks = [0, 4, 8].map((start, index) => ({ index, start, end: start + 4 }));
  // 10 fps, keyframes at 0, 3.5 and 8; B-frames read before the frames they follow (pts out of order).
  const packets = [
    { pts: 0, pos: 100, key: true },
    { pts: 3.5, pos: 4000, key: true },
    { pts: 3.8, pos: 4500, key: false },
    { pts: 3.6, pos: 4600, key: false },
    { pts: 4.1, pos: 5000, key: false },
    { pts: 3.9, pos: 5100, key: false },
    { pts: 4.0, pos: 5200, key: false },
    { pts: 8, pos: 9000, key: true },
    { pts: 8.1, pos: 9100, key: false },
  ];
  test('the keyframe at or before each start, the first frame at or after it, the bytes to the next keyframe', () => {
    const out = annotateChunks(chunks, packets, 0, 12_000);
    assert.deepEqual(
      out.map((c) => [c.keyframe, c.firstFrame, c.bytes]),
      [
        [0, 0, 3900],
        [3.5, 4.0, 5000],
        [8, 8, 3000],
      ],
    );
  });
  test('a start with no keyframe before it among the packets is left as planned', () => {
    const out = annotateChunks(chunks, packets.slice(1), 0, 12_000);
    assert.deepEqual(out[0], chunks[0]);
    assert.equal(out[1]!.keyframe, 3.5);
  });
  test("the whole file's packets (no index): also the keyframe at or before the preroll before each start", () => {
    const out = annotateChunks(chunks, packets, 0, 12_000, 0.5);
    assert.deepEqual(
      out.map((c) => [c.keyframe, c.prerollKeyframe]),
      [
        [0, undefined],
        [3.5, 3.5],
        [8, 3.5],
      ],
    );
    assert.equal(annotateChunks(chunks, packets, 0, 12_000)[2]!.prerollKeyframe, undefined);
  });
  test('no frame within the look-ahead (a still picture): no first frame, the chunk job probes', () => {
    const still = [
      { pts: 0, pos: 100, key: true },
      { pts: 3.5, pos: 4000, key: true },
      { pts: 6, pos: 5000, key: false },
    ];
    const out = annotateChunks(chunks.slice(0, 2), still, 0, 12_000);
    assert.equal(out[1]!.keyframe, 3.5);
    assert.equal(out[1]!.firstFrame, undefined);
  });
});

describe('timestampJump', () => {
  const at = (...dts: number[]) => dts.map((t, i) => ({ pts: t + 0.1, dts: t, pos: i * 100, key: false }));
  test('decoding times that go back, or forward by more than 10 s, are a discontinuity', () => {
    assert.equal(timestampJump(at(0, 0.04, 0.08, 9, 9.04)), undefined, 'a gap under 10 s is a pause');
    assert.deepEqual(timestampJump(at(0, 0.04, 0.08, 0.04)), { from: 0.08, to: 0.04 });
    assert.deepEqual(timestampJump(at(0, 0.04, 20)), { from: 0.04, to: 20 });
    assert.equal(
      timestampJump([
        { pts: 5, pos: 0, key: true },
        { pts: 1, pos: 9, key: false },
      ]),
      undefined,
    );
  });
});

describe('readChunkStarts', () => {
  let dir: string;
  let input: string;
  const tools = defaultTools();
  const logger = createLogger('silent');
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-chunk-costs-'));
    input = path.join(dir, 'still-then-noise.mp4');
    // 4 s of a still picture, then 4 s of noise: the second chunk spans nearly all the bytes.
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'color=c=gray:s=320x180:r=30:d=4'],
      ...['-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30:d=4,noise=alls=80:allf=t'],
      ...['-filter_complex', '[0:v][1:v]concat=n=2:v=1:a=0', '-c:v', 'libx264', '-preset', 'ultrafast'],
      ...['-g', '30', '-pix_fmt', 'yuv420p', input],
    ]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('from the index of a real file: keyframes, first frames on the grid, the noisy chunk spanning more', async () => {
    const ctx = { tools, logger, idleTimeoutMs: 60_000, maxRuntimeMs: 60_000, tempDir: dir };
    const { media } = await probeSource(input, { ...tools, logger, tempDir: dir });
    const plan = planEncode(media, testEncodeSettings);
    const planned = planChunks({
      duration: media.duration,
      segmentSeconds: 2,
      chunkSeconds: 2,
      minInputSeconds: 0,
    });
    assert.equal(planned.length, 4);
    const chunks = await readChunkStarts({ inputPath: input, media, plan, chunks: planned, ctx });
    // Keyframes every 30 frames (1 s): one at each 2 s start.
    assert.deepEqual(
      chunks.map((c) => [c.keyframe, c.firstFrame]),
      [
        [0, 0],
        [2, 2],
        [4, 4],
        [6, 6],
      ],
    );
    const bytes = chunks.map((c) => c.bytes!);
    assert.ok(bytes[3]! > 10 * bytes[0]!, `still ${bytes[0]} B, noise ${bytes[3]} B`);
    assert.deepEqual(
      costliestFirst(chunks).map((c) => c.index),
      bytes[2]! > bytes[3]! ? [2, 3, 0, 1] : [3, 2, 0, 1],
    );
  });

  test('two MPEG-TS captures put end to end (timestamps that start again) are not split', async () => {
    const ctx = { tools, logger, idleTimeoutMs: 60_000, maxRuntimeMs: 60_000, tempDir: dir };
    const part = path.join(dir, 'part.ts');
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30:d=4'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-pix_fmt', 'yuv420p', part],
    ]);
    const joined = path.join(dir, 'joined.ts');
    await writeFile(joined, Buffer.concat([await readFile(part), await readFile(part)]));
    const { media } = await probeSource(joined, { ...tools, logger, tempDir: dir });
    assert.match(media.formatName, /mpegts/);
    const plan = planEncode(media, testEncodeSettings);
    const chunks = planChunks({ duration: 8, segmentSeconds: 2, chunkSeconds: 2, minInputSeconds: 0 });
    await assert.rejects(
      readChunkStarts({ inputPath: joined, media, plan, chunks, ctx }),
      (err: Error) =>
        err instanceof UnsplittableInput && /timestamps jump from 3\.9\d+ s to 0\.0/.test(err.message),
    );
    // One capture alone splits.
    const { media: one } = await probeSource(part, { ...tools, logger, tempDir: dir });
    const read = await readChunkStarts({
      inputPath: part,
      media: one,
      plan,
      chunks: chunks.slice(0, 2),
      ctx,
    });
    assert.deepEqual(
      read.map((c) => c.keyframe),
      [0, 2],
    );
  });
});
