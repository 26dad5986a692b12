import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { generateClip } from '../helpers/media.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { startTestService, submit, waitForFinal, type StatusDoc } from '../helpers/service.js';

const run = promisify(execFile);
const MB = 1024 * 1024;

/**
 * About 200 MB in well under a second: 20 s of uncompressed 640x360 video (and PCM audio) in Matroska. It
 * costs FFmpeg nothing to decode, so the test spends its time where it should: moving the bytes.
 */
async function generateLargeInput(dir: string): Promise<string> {
  const file = path.join(dir, 'large.mkv');
  await run('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=640x360:rate=30:duration=20',
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=48000:duration=20',
    '-c:v',
    'rawvideo',
    '-pix_fmt',
    'yuv420p',
    '-c:a',
    'pcm_s16le',
    file,
  ]);
  return file;
}

describe('a large input from S3', () => {
  let s3: TestS3;
  let dir: string;
  before(async () => {
    s3 = await startS3Server();
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-s3-large-'));
  });
  after(async () => {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a 200 MB input converts while the service process stays far below that in memory', async () => {
    const file = await generateLargeInput(dir);
    const size = (await stat(file)).size;
    assert.ok(size > 190 * MB, `input is ${Math.round(size / MB)} MB`);
    const input = await s3.createBucket('large-in');
    const output = await s3.createBucket('large-out');
    await s3.putFile(input, 'big/large.mkv', file, 'video/x-matroska');
    await rm(file);

    // s3rver runs in a child process, so this process's memory is the service's (API, worker, S3 client).
    const svc = await startTestService(
      s3.env({
        INPUT_S3_BUCKET: input,
        OUTPUT_S3_BUCKET: output,
        LADDER: '144:200k',
        X264_PRESET: 'ultrafast',
        TASK_MAX_ATTEMPTS: '1',
      }),
    );
    try {
      // A small task first, so code loaded on first use (SDK commands, pipeline modules) is not counted.
      await s3.putFile(
        input,
        'warm-up.mp4',
        await generateClip({ width: 320, height: 180, seconds: 2, audio: true }),
      );
      const warm = await waitForFinal(svc.url, await submit(svc.url, 'warm-up.mp4'));
      assert.equal(warm.doc.status, 'completed', warm.doc.error ?? '');

      const baseline = process.memoryUsage.rss();
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage.rss());
      }, 10);
      let doc: StatusDoc;
      try {
        ({ doc } = await waitForFinal(svc.url, await submit(svc.url, 'big/large.mkv'), 100_000));
      } finally {
        clearInterval(sampler);
      }
      assert.equal(doc.status, 'completed', doc.error ?? '');
      assert.equal(doc.output?.renditions.length, 1);
      const objects = await s3.listObjects(output, 'big/large/');
      assert.ok(objects.some((o) => o.key === 'big/large/manifest.mpd'));

      const growth = peak - baseline;
      const report = `RSS ${Math.round(baseline / MB)} MB before, peak ${Math.round(peak / MB)} MB (+${Math.round(growth / MB)} MB) for a ${Math.round(size / MB)} MB input`;
      // What the task adds on top of the idle, warmed-up service: a streamed download adds a few buffers, a
      // buffered one would add the whole 200 MB. (The absolute RSS includes the test runner and is not the
      // service's to keep small.)
      assert.ok(growth < 64 * MB, report);
      console.log(`# ${report}`);
    } finally {
      await svc.close();
    }
  });
});
