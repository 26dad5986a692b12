import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { contentTypeFor, isImmutableMedia } from '../../src/jobs/content-type.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { generateClip } from '../helpers/media.js';
import { checkDashPackage } from '../helpers/package-check.js';
import { startS3Server, type StoredObject, type TestS3 } from '../helpers/s3-server.js';
import {
  getJson,
  postJson,
  startTestService,
  submit,
  waitForFinal,
  type StatusDoc,
  type TestService,
} from '../helpers/service.js';

const segmentCache = 'public, max-age=123, immutable';
const manifestCache = 'public, max-age=5';
/** Small and fast: two low rungs of a short clip. */
const fast = {
  LADDER: '180:300k,360:700k',
  X264_PRESET: 'ultrafast',
  SEGMENT_CACHE_CONTROL: segmentCache,
  MANIFEST_CACHE_CONTROL: manifestCache,
  TASK_MAX_ATTEMPTS: '1',
  S3_MAX_ATTEMPTS: '3',
};

/** The fields of the status document's `output` these tests read (StatusDoc in the harness lists fewer). */
interface PublishedOutput {
  storage: string;
  bucket?: string;
  prefix: string;
  manifest?: { key: string; url?: string };
  files: number;
}
const outputOf = (doc: StatusDoc) => doc.output as unknown as PublishedOutput;

describe('S3 input and output: HTTP → queue → FFmpeg → packager → s3rver over HTTP', () => {
  let s3: TestS3;
  let clip: string;
  let tmp: string;
  const services: TestService[] = [];
  before(async () => {
    s3 = await startS3Server();
    clip = await generateClip({ width: 640, height: 360, seconds: 5, audio: true });
    tmp = await mkdtemp(path.join(tmpdir(), 'dvc-s3-e2e-'));
  });
  after(async () => {
    for (const svc of services) await svc.close();
    await s3.stop();
    await rm(tmp, { recursive: true, force: true });
  });
  const start = async (env: Record<string, string>, options: Parameters<typeof startTestService>[1] = {}) => {
    const svc = await startTestService(env, options);
    services.push(svc);
    return svc;
  };
  /** Every object of a package carries the content type of its extension and the cache policy of its role. */
  const assertHeaders = (objects: StoredObject[]) => {
    for (const o of objects) {
      assert.equal(o.contentType, contentTypeFor(o.key), `Content-Type of ${o.key}`);
      if (/\/audio\/[^/]+\.(m4s|mp4)$/.test(o.key)) assert.equal(o.contentType, 'audio/mp4', o.key);
      else if (/\/text_\d+\/[^/]+\.(m4s|mp4)$/.test(o.key))
        assert.equal(o.contentType, 'application/mp4', o.key);
      else if (o.key.endsWith('.vtt')) assert.equal(o.contentType, 'text/vtt', o.key);
      else if (/\.(m4s|mp4)$/.test(o.key)) assert.equal(o.contentType, 'video/mp4', o.key);
      assert.equal(
        o.cacheControl,
        isImmutableMedia(o.key) ? segmentCache : manifestCache,
        `Cache-Control of ${o.key}`,
      );
    }
  };

  test('input bucket to output bucket: every object published with its headers, the MPD plays from them', async () => {
    const input = await s3.createBucket('in');
    const output = await s3.createBucket('out');
    await s3.putFile(input, 'uploads/example.mp4', clip);
    const srt = path.join(tmp, 'example.en.srt');
    await writeFile(srt, '1\n00:00:01,000 --> 00:00:02,000\nHello from the bucket\n');
    await s3.putFile(input, 'uploads/example.en.srt', srt);
    const svc = await start(
      s3.env({
        ...fast,
        INPUT_S3_BUCKET: input,
        OUTPUT_S3_BUCKET: output,
        OUTPUT_PREFIX: 'packages',
        PUBLIC_BASE_URL: 'https://cdn.example.com/vod/',
      }),
    );
    const subtitles = [{ filename: 'uploads/example.en.srt', language: 'en' }];
    const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'uploads/example.mp4', { subtitles }));
    assert.equal(doc.status, 'completed', doc.error ?? '');
    const out = outputOf(doc);
    assert.ok(
      (await s3.listObjects(output, '')).some((o) => /\/text_1\/1\.vtt$/.test(o.key)),
      'the sidecar from the input bucket is packaged',
    );
    assert.equal(out.storage, 's3');
    assert.equal(out.bucket, output);
    assert.equal(out.prefix, 'packages/uploads/example');
    assert.deepEqual(out.manifest, {
      key: 'packages/uploads/example/manifest.mpd',
      url: 'https://cdn.example.com/vod/packages/uploads/example/manifest.mpd',
    });

    const pkgDir = path.join(tmp, 'example');
    const objects = await s3.downloadPrefix(output, 'packages/uploads/example/', pkgDir);
    assert.equal(objects.length, out.files, 'every file of the package is an object, nothing more');
    const keys = objects.map((o) => o.key);
    for (const k of ['manifest.mpd', 'master.m3u8', 'poster.jpg']) {
      assert.ok(keys.includes(`packages/uploads/example/${k}`), `${k} published`);
    }
    assertHeaders(objects);
    const mpd = await checkDashPackage(pkgDir, { heights: [180, 360], audio: true, segmentDuration: 4 });
    // The package was downloaded from the bucket alone, so every init and segment the MPD names exists there.
    const referenced = mpd.representations.flatMap((r) => [r.init, ...r.segments]);
    for (const f of referenced) assert.ok(keys.includes(`packages/uploads/example/${f}`), f);
    assert.deepEqual(
      (await s3.listObjects(output, '')).map((o) => o.key),
      keys,
      'nothing else in the output bucket (no leftovers of multipart uploads or temp keys)',
    );
    assert.deepEqual(
      (await s3.listObjects(input, '')).map((o) => o.key),
      ['uploads/example.en.srt', 'uploads/example.mp4'],
      'the input is left alone',
    );
    assert.deepEqual(await readdir(path.join(svc.stateDir, 'work')), [], 'work directory removed');
  });

  test('local input, S3 output', async () => {
    const output = await s3.createBucket('out-mixed');
    const svc = await start(s3.env({ ...fast, OUTPUT_S3_BUCKET: output }));
    await copyFile(clip, path.join(svc.inputDir, 'local.mp4'));
    const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'local.mp4'));
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.equal(doc.output?.manifest?.key, 'local/manifest.mpd');
    assert.equal(outputOf(doc).bucket, output);
    const pkgDir = path.join(tmp, 'mixed');
    assertHeaders(await s3.downloadPrefix(output, 'local/', pkgDir));
    await checkDashPackage(pkgDir, { heights: [180, 360], audio: true, decode: false });
  });

  test('a missing key, a missing input bucket and a missing output bucket fail with that reason', async () => {
    const input = await s3.createBucket('in-missing');
    const absentIn = s3.bucketName('absent-in');
    const absentOut = s3.bucketName('absent-out');
    await s3.putFile(input, 'there.mp4', clip);

    const noKey = await start(s3.env({ ...fast, INPUT_S3_BUCKET: input, OUTPUT_S3_BUCKET: input }));
    const missingKey = (await waitForFinal(noKey.url, await submit(noKey.url, 'not/there.mp4'))).doc;
    assert.equal(missingKey.status, 'failed');
    assert.equal(missingKey.error_code, 'input_not_found');
    assert.equal(missingKey.error, 'input not found');
    await s3.putFile(input, 'here.mp4', clip);
    const subtitles = [{ filename: 'here.fr.srt', language: 'fr' }];
    const noSidecar = (await waitForFinal(noKey.url, await submit(noKey.url, 'here.mp4', { subtitles }))).doc;
    assert.equal(noSidecar.error_code, 'input_not_found');
    assert.equal(noSidecar.error, 'subtitle file not found: "here.fr.srt"');

    const noInBucket = await start(s3.env({ ...fast, INPUT_S3_BUCKET: absentIn, OUTPUT_S3_BUCKET: input }));
    const inDoc = (await waitForFinal(noInBucket.url, await submit(noInBucket.url, 'there.mp4'))).doc;
    assert.equal(inDoc.status, 'failed');
    assert.equal(inDoc.error_code, 'storage_denied');
    assert.equal(inDoc.error, `bucket "${absentIn}" does not exist`);
    const planned = await postJson(`${noInBucket.url}/plan`, { video_filename: 'there.mp4' });
    assert.equal(planned.status, 503, 'the service cannot read inputs: not the request’s fault');
    assert.deepEqual(planned.body, {
      error: 'not_ready',
      message: `the input cannot be read now: bucket "${absentIn}" does not exist`,
    });
    const ready = await getJson(`${noInBucket.url}/readyz`);
    assert.equal(ready.status, 503, 'not ready while the input bucket is missing');
    assert.deepEqual(
      [
        (ready.body.checks as Record<string, string>).input_storage,
        (ready.body.checks as Record<string, string>).output_storage,
      ],
      [`bucket "${absentIn}" does not exist`, 'ok'],
    );

    const noOutBucket = await start(s3.env({ ...fast, INPUT_S3_BUCKET: input, OUTPUT_S3_BUCKET: absentOut }));
    const outDoc = (await waitForFinal(noOutBucket.url, await submit(noOutBucket.url, 'there.mp4'))).doc;
    assert.equal(outDoc.status, 'failed');
    assert.equal(outDoc.error_code, 'storage_denied');
    assert.equal(outDoc.error, `bucket "${absentOut}" does not exist`);
    assert.equal(outDoc.output, null);
  });

  test('wrong credentials: failed with a clear reason; the secret is in neither the status nor the logs', async () => {
    const input = await s3.createBucket('in-creds');
    await s3.putFile(input, 'video.mp4', clip);
    const secret = `s3cr3t-${randomBytes(12).toString('hex')}`;
    const lines: string[] = [];
    const svc = await start(
      {
        ...s3.env({ ...fast, INPUT_S3_BUCKET: input, OUTPUT_S3_BUCKET: input }, secret),
        AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG0',
        LOG_LEVEL: 'trace',
      },
      { logDestination: { write: (line: string) => void lines.push(line) } },
    );
    const id = await submit(svc.url, 'video.mp4');
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'failed');
    assert.equal(doc.error_code, 'storage_denied');
    assert.equal(
      doc.error,
      `the S3 credentials were rejected for bucket "${input}" (InvalidAccessKeyId): ` +
        'check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    );
    const status = await fetch(`${svc.url}/status/${id}`).then((r) => r.text());
    const listing = await getJson(`${svc.url}/tasks`).catch(() => ({ body: {} }));
    assert.ok(lines.length > 3, 'logs were captured');
    assert.ok(
      lines.some((l) => l.includes('InvalidAccessKeyId')),
      'the logs say what went wrong',
    );
    for (const [what, text] of [
      ['status document', status],
      ['task listing', JSON.stringify(listing.body)],
      ['logs', lines.join('')],
    ] as const) {
      assert.ok(!text.includes(secret), `the secret appears in the ${what}`);
    }
  });

  test('an S3 endpoint answering 503 to the first two attempts of every request: the task still completes', async () => {
    const input = await s3.createBucket('in-flaky');
    const output = await s3.createBucket('out-flaky');
    await s3.putFile(input, 'flaky.mp4', clip);
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      unavailable: { match: () => true, times: 2 },
    });
    try {
      const svc = await start({
        ...s3.env({ ...fast, INPUT_S3_BUCKET: input, OUTPUT_S3_BUCKET: output, S3_MAX_ATTEMPTS: '4' }),
        S3_ENDPOINT: proxy.url,
      });
      const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'flaky.mp4'));
      assert.equal(doc.status, 'completed', doc.error ?? '');
      const objects = await s3.listObjects(output, 'flaky/');
      assert.equal(objects.length, outputOf(doc).files);
      assert.ok(
        proxy.stats.unavailable >= 2 * objects.length,
        `every request met two 503s first (${proxy.stats.unavailable} served)`,
      );
      const pkgDir = path.join(tmp, 'flaky');
      await s3.downloadPrefix(output, 'flaky/', pkgDir);
      await checkDashPackage(pkgDir, { heights: [180, 360], audio: true, decode: false });
    } finally {
      await proxy.close();
    }
  });

  test('when the manifest cannot be published, the segments already uploaded are deleted again', async () => {
    const input = await s3.createBucket('in-half');
    const output = await s3.createBucket('out-half');
    await s3.putFile(input, 'half.mp4', clip);
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      // The package's manifest, not the copy of the one it replaces kept beside it (`.replaced-<task>/`).
      unavailable: {
        match: (r) => r.method === 'PUT' && /\/half\/manifest\.mpd(\?|$)/.test(r.url),
        times: 1000,
      },
    });
    try {
      const svc = await start({
        ...s3.env({ ...fast, INPUT_S3_BUCKET: input, OUTPUT_S3_BUCKET: output, S3_MAX_ATTEMPTS: '2' }),
        S3_ENDPOINT: proxy.url,
      });
      const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'half.mp4'));
      assert.equal(doc.status, 'failed');
      assert.equal(doc.error_code, 'storage_error');
      assert.equal(
        doc.error,
        `the S3 service for bucket "${output}" is unavailable (503 ServiceUnavailable) after 2 attempts`,
      );
      assert.ok(
        proxy.seen.some((r) => r.method === 'PUT' && r.url.includes('.m4s')),
        'segments had been uploaded',
      );
      assert.deepEqual(await s3.listObjects(output, ''), [], 'no half-published package is left');
    } finally {
      await proxy.close();
    }
  });

  test('a re-encode whose manifest cannot be published leaves the package it was replacing as it was', async () => {
    const input = await s3.createBucket('in-again');
    const output = await s3.createBucket('out-again');
    await s3.putFile(input, 'again.mp4', clip);
    const env = { ...fast, INPUT_S3_BUCKET: input, OUTPUT_S3_BUCKET: output, S3_MAX_ATTEMPTS: '2' };
    const first = await start(s3.env(env));
    const { doc: done } = await waitForFinal(first.url, await submit(first.url, 'again.mp4'));
    assert.equal(done.status, 'completed', done.error ?? '');
    const before = await s3.downloadPrefix(output, 'again/', path.join(tmp, 'again-before'));

    const proxy = await startFaultProxy({
      target: s3.endpoint,
      // The package's manifest, not the copy of the one it replaces kept beside it (`.replaced-<task>/`).
      unavailable: {
        match: (r) => r.method === 'PUT' && /\/again\/manifest\.mpd(\?|$)/.test(r.url),
        times: 1000,
      },
    });
    try {
      const second = await start({ ...s3.env(env), S3_ENDPOINT: proxy.url });
      // Other segments, so that a package mixing the two could not pass for the first.
      const { doc } = await waitForFinal(
        second.url,
        await submit(second.url, 'again.mp4', { segment_duration: 2 }),
      );
      assert.equal(doc.status, 'failed');
      assert.equal(doc.error_code, 'storage_error');
      for (const name of ['.m4s', 'master.m3u8', 'poster.jpg']) {
        assert.ok(
          proxy.seen.some((r) => r.method === 'PUT' && r.url.includes(name)),
          `the second package had put ${name} before its manifest failed`,
        );
      }
      const after = await s3.downloadPrefix(output, 'again/', path.join(tmp, 'again-after'));
      assert.deepEqual(
        after.map((o) => [o.key, o.size, o.cacheControl]),
        before.map((o) => [o.key, o.size, o.cacheControl]),
        'the same objects as before the second task',
      );
      for (const top of ['manifest.mpd', 'master.m3u8', 'poster.jpg']) {
        assert.deepEqual(
          await readFile(path.join(tmp, 'again-after', top)),
          await readFile(path.join(tmp, 'again-before', top)),
          `${top} holds the first package's again`,
        );
      }
      await checkDashPackage(path.join(tmp, 'again-after'), {
        heights: [180, 360],
        audio: true,
        segmentDuration: 4,
      });
    } finally {
      await proxy.close();
    }
  });
});
