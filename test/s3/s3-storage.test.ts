import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { S3Settings } from '../../src/storage/storage-settings.js';
import { TaskFailure } from '../../src/domain/failures.js';
import { S3Storage } from '../../src/storage/s3-storage.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { s3rverAccessKeyId, startS3Server, type TestS3 } from '../helpers/s3-server.js';

const secret = `never-shown-${randomBytes(8).toString('hex')}`;

describe('S3Storage against a real s3rver over HTTP', () => {
  let s3: TestS3;
  let dir: string;
  const opened: S3Storage[] = [];
  before(async () => {
    s3 = await startS3Server();
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-s3-adapter-'));
  });
  after(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const settings = (bucket: string, extra: Partial<S3Settings> = {}): S3Settings => ({
    bucket,
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3rverAccessKeyId, secretAccessKey: secret },
    maxAttempts: 3,
    ...extra,
  });
  const storage = (bucket: string, extra: Partial<S3Settings> = {}, publicBaseUrl?: string) => {
    const s = new S3Storage(settings(bucket, extra), publicBaseUrl);
    opened.push(s);
    return s;
  };
  const randomFile = async (bytes: number) => {
    const p = path.join(dir, randomBytes(4).toString('hex'));
    const data = randomBytes(bytes);
    await writeFile(p, data);
    return { path: p, sha: sha256(data) };
  };
  /** The failure as everything a caller could show or log: message, JSON, inspect (with cause). */
  const everyRendering = (err: unknown) =>
    [String(err), JSON.stringify(err), inspect(err, { depth: 10 }), (err as Error).message].join('\n');

  test('a 20 MB file goes up in parts with its Content-Type and Cache-Control and comes back intact', async () => {
    const bucket = await s3.createBucket('multipart');
    const recorder = await startFaultProxy({ target: s3.endpoint });
    const store = storage(bucket, { endpoint: recorder.url });
    const src = await randomFile(20 * 1024 * 1024 + 123);
    await store.upload('pkg/video/big.m4s', src.path, {
      contentType: 'video/mp4',
      cacheControl: 'public, max-age=31536000, immutable',
    });
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'pkg/video/big.m4s' }));
    assert.equal(head.ContentType, 'video/mp4');
    assert.equal(head.CacheControl, 'public, max-age=31536000, immutable');
    assert.equal(head.ContentLength, 20 * 1024 * 1024 + 123);
    await recorder.close();
    const parts = recorder.seen.filter((r) => r.method === 'PUT' && /[?&]partNumber=\d/.test(r.url));
    assert.equal(parts.length, 3, 'uploaded as a three-part multipart upload');
    const dest = path.join(dir, 'big.back');
    await storage(bucket).download('pkg/video/big.m4s', dest);
    assert.equal(sha256(await readFile(dest)), src.sha);
  });

  test('location names the bucket, and the public URL when PUBLIC_BASE_URL is set', async () => {
    const bucket = s3.bucketName();
    assert.deepEqual(storage(bucket).location('a/manifest.mpd'), { key: 'a/manifest.mpd', bucket });
    assert.deepEqual(storage(bucket, {}, 'https://cdn.example.com/videos/').location('a/manifest.mpd'), {
      key: 'a/manifest.mpd',
      bucket,
      url: 'https://cdn.example.com/videos/a/manifest.mpd',
    });
    assert.equal(storage(bucket).description, `s3://${bucket}`);
  });

  test('a download is pinned to the version head saw: a re-upload in between cannot slip past the size check', async () => {
    const bucket = await s3.createBucket('pinned');
    const store = storage(bucket);
    const small = await randomFile(1000);
    await store.upload('in/clip.mp4', small.path, { contentType: 'video/mp4' });
    const checked = await store.head('in/clip.mp4');
    assert.ok(checked?.etag, 'head tells the version');
    const dest = path.join(dir, 'pinned');
    await store.download('in/clip.mp4', dest, undefined, { etag: checked.etag });
    assert.equal(sha256(await readFile(dest)), small.sha);
    // s3rver serves any version; S3 answers 412 to a GET whose If-Match names another. The request is what
    // this side controls: every GET of the download names the version head saw.
    const recorder = await startFaultProxy({ target: s3.endpoint });
    try {
      await storage(bucket, { endpoint: recorder.url }).download(
        'in/clip.mp4',
        path.join(dir, 'pinned-2'),
        undefined,
        {
          etag: checked.etag,
        },
      );
      const gets = recorder.seen.filter((r) => r.method === 'GET');
      assert.ok(gets.length >= 1);
      for (const get of gets) assert.equal(get.ifMatch, checked.etag);
    } finally {
      await recorder.close();
    }
  });

  test('the public URL of a key with a space, #, ?, + or % fetches that object', async () => {
    const bucket = await s3.createBucket('public-url');
    const key = 'talks/my talk #1+b%20?x/manifest.mpd';
    const file = await randomFile(100);
    await storage(bucket).upload(key, file.path, { contentType: 'application/dash+xml' });
    // s3rver serves the bucket at <endpoint>/<bucket> (path style), as a CDN in front of it would.
    const { url } = storage(bucket, {}, `${s3.endpoint}/${bucket}`).location(key);
    assert.equal(url, `${s3.endpoint}/${bucket}/talks/my%20talk%20%231%2Bb%2520%3Fx/manifest.mpd`);
    const res = await fetch(url!);
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), file.sha);
  });

  test('a missing bucket fails every call with storage_denied naming the bucket', async () => {
    const bucket = s3.bucketName('missing');
    const store = storage(bucket);
    const src = await randomFile(100);
    const isMissingBucket = (err: unknown) => {
      assert.ok(err instanceof TaskFailure, String(err));
      assert.equal(err.code, 'storage_denied');
      assert.equal(err.permanent, true);
      assert.equal(err.message, `bucket "${bucket}" does not exist`);
      return true;
    };
    await assert.rejects(store.check(), isMissingBucket);
    await assert.rejects(store.head('in/video.mp4'), isMissingBucket);
    await assert.rejects(store.download('in/video.mp4', path.join(dir, 'x')), isMissingBucket);
    await assert.rejects(
      store.upload('out/seg.m4s', src.path, { contentType: 'video/mp4' }),
      isMissingBucket,
    );
    await assert.rejects(store.list('out'), isMissingBucket);
  });

  test('wrong credentials fail with storage_denied, and the secret appears nowhere in the error', async () => {
    const bucket = await s3.createBucket('creds');
    await s3.putFile(bucket, 'in.mp4', (await randomFile(10)).path);
    const store = storage(bucket, {
      credentials: { accessKeyId: 'AKIAWRONGWRONGWRONG0', secretAccessKey: secret },
    });
    const failures: unknown[] = [];
    for (const call of [
      () => store.check(),
      () => store.head('in.mp4'),
      () => store.download('in.mp4', path.join(dir, 'y')),
      () => store.list(''),
    ]) {
      await assert.rejects(call(), (err: unknown) => {
        failures.push(err);
        return err instanceof TaskFailure && err.code === 'storage_denied';
      });
    }
    for (const err of failures) {
      assert.equal(
        (err as Error).message,
        `the S3 credentials were rejected for bucket "${bucket}" (InvalidAccessKeyId): ` +
          'check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
      );
    }
    for (const err of failures) assert.ok(!everyRendering(err).includes(secret), everyRendering(err));
  });

  test('an unreachable endpoint is a transient storage_error after the SDK retries', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((r) => closed.close(() => r()));
    const store = storage('any-bucket', { endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2 });
    await assert.rejects(store.head('in.mp4'), (err: unknown) => {
      assert.ok(err instanceof TaskFailure, String(err));
      assert.equal(err.code, 'storage_error');
      assert.equal(err.permanent, false);
      assert.equal(
        err.message,
        'the S3 endpoint for bucket "any-bucket" could not be reached (ECONNREFUSED) after 2 attempts',
      );
      assert.ok(!everyRendering(err).includes(secret));
      return true;
    });
  });

  test('a presigned PUT URL accepts an upload with the signed Content-Type', async () => {
    const bucket = await s3.createBucket('presign');
    const store = storage(bucket);
    const url = await store.createUploadUrl('uploads/clip.mp4', 'video/mp4', 300);
    assert.ok(url.startsWith(`${s3.endpoint}/${bucket}/uploads/clip.mp4?`), url);
    assert.match(url, /X-Amz-Expires=300/);
    assert.ok(!url.includes(secret), 'the URL carries a signature, never the secret');
    const body = randomBytes(4096);
    const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'video/mp4' }, body });
    assert.equal(res.status, 200, await res.text());
    assert.equal((await store.head('uploads/clip.mp4'))?.size, 4096);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'uploads/clip.mp4' }));
    assert.equal(head.ContentType, 'video/mp4');
    await assert.rejects(store.createUploadUrl('../escape.mp4', 'video/mp4', 300));
  });

  test('S3_PUBLIC_ENDPOINT: presigned URLs are signed for the address clients use, not the service’s', async () => {
    const bucket = await s3.createBucket('presign-public');
    const internal = new URL(s3.endpoint);
    // The same server under another name, as http://minio:9000 inside a compose network is localhost:9000 outside.
    const publicEndpoint = `http://localhost:${internal.port}`;
    const store = new S3Storage(settings(bucket, { publicEndpoint }));
    opened.push(store);
    const url = await store.createUploadUrl('uploads/public.mp4', 'video/mp4', 300);
    assert.ok(url.startsWith(`${publicEndpoint}/${bucket}/uploads/public.mp4?`), url);
    const body = randomBytes(1024);
    const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'video/mp4' }, body });
    assert.equal(res.status, 200, await res.text());
    assert.equal(
      (await store.head('uploads/public.mp4'))?.size,
      1024,
      'the service reads it at its own endpoint',
    );
    // SigV4 signs the host (which s3rver does not check, AWS and MinIO do): the URL is only valid at that address.
    assert.match(new URL(url).searchParams.get('X-Amz-SignedHeaders') ?? '', /(^|;)host(;|$)/);
  });

  test('a cancelled upload stops midway: the call rejects with the reason and the multipart upload is aborted', async () => {
    const bucket = await s3.createBucket('cancel-upload');
    // Each part takes 1.5 s to reach the store: the cancel comes while the first ones are in flight.
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      delay: { match: (r) => r.method === 'PUT' && r.url.includes('partNumber='), ms: 1500 },
    });
    try {
      const store = new S3Storage(settings(bucket, { endpoint: proxy.url }));
      opened.push(store);
      const src = path.join(dir, 'big-for-cancel.bin');
      await writeFile(src, randomBytes(20 * 1024 * 1024));
      const controller = new AbortController();
      const uploading = store.upload('out/big.bin', src, {
        contentType: 'video/mp4',
        signal: controller.signal,
      });
      const partSent = () => proxy.seen.some((r) => r.url.includes('partNumber='));
      while (!partSent()) await new Promise((r) => setTimeout(r, 20));
      const started = Date.now();
      controller.abort(new Error('cancelled'));
      await assert.rejects(uploading, /^Error: cancelled$/);
      assert.ok(
        Date.now() - started < 1000,
        `stopped within ${Date.now() - started} ms, parts still in flight`,
      );
      const aborted = () => proxy.seen.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='));
      for (let i = 0; i < 100 && !aborted(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(
        aborted(),
        'AbortMultipartUpload was sent once the parts in flight ended: none are left behind',
      );
      const parts = proxy.seen.filter((r) => r.url.includes('partNumber=')).length;
      assert.ok(parts < 3, `no part was started after the cancel (${parts} of 3 sent)`);
      assert.equal(await storage(bucket).head('out/big.bin'), undefined, 'nothing was stored');
      await assert.rejects(
        store.upload('out/late.bin', src, { contentType: 'video/mp4', signal: controller.signal }),
        /^Error: cancelled$/,
        'an upload asked for after the cancel does not start',
      );
    } finally {
      await proxy.close();
    }
  });

  test('503 answers to the first attempts are retried by the SDK; without retries they fail clearly', async () => {
    const bucket = await s3.createBucket('flaky');
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      unavailable: { match: (r) => r.url.includes(bucket), times: 2 },
    });
    try {
      const store = storage(bucket, { endpoint: proxy.url, maxAttempts: 4 });
      const small = await randomFile(1000);
      const big = await randomFile(9 * 1024 * 1024);
      await store.check();
      await store.upload('p/seg.m4s', small.path, { contentType: 'video/mp4' });
      await store.upload('p/big.m4s', big.path, { contentType: 'video/mp4' });
      assert.equal((await store.head('p/seg.m4s'))?.size, 1000);
      assert.deepEqual(await store.list('p'), ['p/big.m4s', 'p/seg.m4s']);
      const dest = path.join(dir, 'flaky.back');
      await store.download('p/big.m4s', dest);
      assert.equal(sha256(await readFile(dest)), big.sha);
      await store.delete(['p/seg.m4s']);
      assert.equal(await store.head('p/seg.m4s'), undefined);
      assert.ok(proxy.stats.unavailable >= 16, `503s served: ${proxy.stats.unavailable}`);

      const impatient = storage(bucket, { endpoint: proxy.url, maxAttempts: 1 });
      await assert.rejects(impatient.head('p/never-asked-before.m4s'), (err: unknown) => {
        assert.ok(err instanceof TaskFailure);
        assert.equal(err.code, 'storage_error');
        assert.match(err.message, /unavailable \(503 .*\) after 1 attempts/);
        return true;
      });
    } finally {
      await proxy.close();
    }
  });

  test('a download whose connection drops mid-body resumes with a Range request', async () => {
    const bucket = await s3.createBucket('resume');
    const src = await randomFile(6 * 1024 * 1024);
    await s3.putFile(bucket, 'in/video.mp4', src.path);
    const proxy = await startFaultProxy({
      target: s3.endpoint,
      cutBody: { match: (r) => r.url.includes('video.mp4'), afterBytes: 2 * 1024 * 1024 + 7, times: 2 },
    });
    try {
      const store = storage(bucket, { endpoint: proxy.url, maxAttempts: 3 });
      const dest = path.join(dir, 'resumed');
      await store.download('in/video.mp4', dest);
      assert.equal(proxy.stats.cut, 2, 'two responses were cut');
      const ranges = proxy.seen.filter((r) => r.method === 'GET').map((r) => r.range);
      assert.equal(ranges.length, 3);
      assert.equal(ranges[0], undefined, 'the first request asks for the whole object');
      // Each retry asks only for the rest: from the bytes that reached the file, never from the start.
      const starts = ranges.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r ?? '')?.[1]));
      const cutAt = 2 * 1024 * 1024 + 7;
      assert.ok(starts[0]! > 0 && starts[0]! <= cutAt, `second request from ${starts[0]}`);
      assert.ok(
        starts[1]! > starts[0]! && starts[1]! <= starts[0]! + cutAt,
        `third request from ${starts[1]}`,
      );
      assert.equal(sha256(await readFile(dest)), src.sha, 'the resumed file is byte-identical');
    } finally {
      await proxy.close();
    }
  });
});

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
