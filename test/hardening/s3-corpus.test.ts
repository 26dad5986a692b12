import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { postJson, startTestService, waitForFinal, type TestService } from '../helpers/service.js';
import { findMarked } from './fs-checks.js';
import { makeHostileMedia, tinyClip } from './hostile-media.js';

/**
 * Part of the corpus again with S3 input and output (s3rver): here the input is downloaded into the work
 * directory first, so hostile names meet a different code path on their way to FFmpeg.
 */

const MARK = `hxs3${process.pid}`;

describe('bad-input corpus on S3 storage', () => {
  let s3: TestS3;
  let svc: TestService;
  let mediaDir: string;
  let inBucket: string;
  let outBucket: string;
  const awsSecret = `aws-secret-${MARK}-c0ffee`;
  const logLines: string[] = [];
  const tally = { inputs: 0, handled: 0, crashes: 0 };

  before(async () => {
    mediaDir = await mkdtemp(path.join(tmpdir(), 'dvc-hostile-s3-'));
    s3 = await startS3Server();
    inBucket = await s3.createBucket('in');
    outBucket = await s3.createBucket('out');
    svc = await startTestService(
      {
        ...s3.env(
          { INPUT_S3_BUCKET: inBucket, OUTPUT_S3_BUCKET: outBucket, MAX_INPUT_BYTES: '3000000' },
          awsSecret,
        ),
        LOG_LEVEL: 'debug',
      },
      { logDestination: { write: (line: string) => void logLines.push(line) } },
    );
    const media = await makeHostileMedia(mediaDir);
    const good = await tinyClip(mediaDir, 'good.mp4', true);
    const uploads: Record<string, Buffer> = {
      'text.mp4': media['text.mp4']!,
      'empty.mp4': media['empty.mp4']!,
      'mdat-cut.mp4': media['mdat-cut.mp4']!,
      'corrupt-video.mp4': media['corrupt-video.mp4']!,
      'huge-16000x16000.avi': media['huge-16000x16000.avi']!,
      'too-big.mp4': Buffer.concat([good, Buffer.alloc(3_100_000)]),
      'ffconcat.mp4': Buffer.from('ffconcat version 1.0\nfile input.mp4\nfile ../../other.mp4\n'),
      [`$(touch ${MARK}-subst).mp4`]: good,
      [`-i ${MARK}.mp4`]: good,
      [`%2e%2e/%2e%2e/${MARK}.mp4`]: good,
      [`it's "q" ${MARK}.mp4`]: good,
      // The extension becomes part of the downloaded file's name in the work directory.
      [`${MARK}.$(touch ${MARK}-ext)`]: good,
    };
    for (const [key, data] of Object.entries(uploads)) {
      const file = path.join(mediaDir, 'upload.bin');
      await writeFile(file, data);
      await s3.putFile(inBucket, key, file);
    }
  });

  after(async () => {
    await svc?.close();
    await s3?.stop();
    await rm(mediaDir, { recursive: true, force: true });
    console.log(`${tally.inputs} inputs, ${tally.handled} handled, ${tally.crashes} crashes (S3 storage)`);
  });

  function item(key: string, check: (doc: Awaited<ReturnType<typeof waitForFinal>>['doc']) => Promise<void>) {
    tally.inputs++;
    test(JSON.stringify(key), async () => {
      const res = await postJson(`${svc.url}/encode`, { video_filename: key });
      if (res.status >= 500) tally.crashes++;
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const { doc } = await waitForFinal(svc.url, res.body.task_id as string, 60_000);
      await check(doc);
      const health = await fetch(`${svc.url}/healthz`).catch(() => undefined);
      if (health?.status !== 200) tally.crashes++;
      assert.equal(health?.status, 200, 'the server still answers');
      tally.handled++;
    });
  }

  const stemOf = (key: string) => key.replace(/\.[^./]*$/, '');
  function fails(key: string, reason: RegExp, code: string) {
    item(key, async (doc) => {
      assert.equal(doc.status, 'failed');
      assert.match(doc.error ?? '', reason);
      assert.equal(doc.error_code, code);
      assert.deepEqual(await s3.listObjects(outBucket, `${stemOf(key)}/`), [], 'nothing published');
    });
  }
  function converts(key: string) {
    item(key, async (doc) => {
      assert.equal(doc.status, 'completed', doc.error ?? '');
      const objects = await s3.listObjects(outBucket, `${stemOf(key)}/`);
      assert.ok(
        objects.some((o) => o.key === `${stemOf(key)}/manifest.mpd`),
        `manifest under the literal key: ${objects.map((o) => o.key).join(', ')}`,
      );
    });
  }

  fails('text.mp4', /not a readable media file/, 'not_a_video');
  fails('empty.mp4', /the input file is empty/, 'not_a_video');
  fails('mdat-cut.mp4', /the input is truncated/, 'invalid_input');
  fails('corrupt-video.mp4', /the stream is corrupt/, 'encode_failed');
  fails('huge-16000x16000.avi', /16000x16000, over the limit/, 'limit_exceeded');
  fails('too-big.mp4', /over the limit of 3000000 bytes/, 'limit_exceeded');
  fails('ffconcat.mp4', /FFmpeg reads it as concat/, 'not_a_video');
  fails(`missing-${MARK}.mp4`, /^input not found$/, 'input_not_found');
  converts(`$(touch ${MARK}-subst).mp4`);
  converts(`-i ${MARK}.mp4`);
  converts(`%2e%2e/%2e%2e/${MARK}.mp4`);
  converts(`it's "q" ${MARK}.mp4`);
  converts(`${MARK}.$(touch ${MARK}-ext)`);

  test('no stray files, no work directories left, the AWS secret never logged', async () => {
    assert.deepEqual(await readdir(path.join(svc.stateDir, 'work')), []);
    const s3rverDirs = (await readdir(tmpdir()))
      .filter((n) => n.startsWith('dvc-s3rver-'))
      .map((n) => path.join(tmpdir(), n));
    assert.deepEqual(await findMarked([tmpdir(), process.cwd()], MARK, [mediaDir, ...s3rverDirs]), []);
    assert.deepEqual(await findMarked([svc.root], MARK), [], 'nothing named after an input on local disk');
    const logs = logLines.join('');
    assert.match(logs, /task submitted/);
    assert.ok(!logs.includes(awsSecret), 'the AWS secret is not in the logs');
    assert.equal(tally.crashes, 0);
  });
});
