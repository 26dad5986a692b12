import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { S3Settings } from './storage-settings.js';
import { TaskFailure } from '../domain/failures.js';
import { assertSafeKey, joinKey, keyUrlPath } from './keys.js';
import { isAbortError, isTransientNetworkError, summarizeS3Error, toS3Failure } from './s3-errors.js';
import type { ObjectInfo, ObjectLocation, PutOptions, Storage, StoragePlace } from './storage.js';

/** Multipart part size; with `queueSize` parts in flight, one upload buffers at most 16 MB. */
const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;
/** DeleteObjects takes at most 1000 keys per request. */
const DELETE_BATCH = 1000;

/**
 * One bucket of S3 or an S3-compatible store through the AWS SDK v3 (its retries, plus resumed downloads);
 * every failure leaves as a TaskFailure naming the bucket and never a credential.
 */
export class S3Storage implements Storage {
  readonly description: string;
  readonly bucket: string;
  private readonly client: S3Client;
  /** Signs presigned URLs for S3_PUBLIC_ENDPOINT when it differs from the address the service uses. */
  private readonly presignClient: S3Client;
  private readonly maxAttempts: number;

  constructor(
    settings: S3Settings,
    private readonly publicBaseUrl?: string,
  ) {
    this.bucket = settings.bucket;
    this.maxAttempts = settings.maxAttempts;
    this.description = `s3://${settings.bucket}`;
    const config: S3ClientConfig = {
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      maxAttempts: settings.maxAttempts,
      retryMode: 'standard',
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
    };
    if (settings.endpoint) {
      config.endpoint = settings.endpoint;
      // Stores other than AWS often reject or mangle the SDK's default CRC trailers (aws-chunked bodies) and
      // presigned URLs that carry them; send checksums only where the API demands them.
      config.requestChecksumCalculation = 'WHEN_REQUIRED';
      config.responseChecksumValidation = 'WHEN_REQUIRED';
    }
    // Absent keys: the SDK's default chain (environment, profile, web identity, instance role).
    if (settings.credentials) config.credentials = settings.credentials;
    this.client = new S3Client(config);
    // A signature covers the host: a URL for browsers outside the service's network (the service reaches
    // http://minio:9000, a browser http://localhost:9000) must be signed for the address they will use.
    this.presignClient =
      settings.publicEndpoint && settings.publicEndpoint !== settings.endpoint
        ? new S3Client({
            ...config,
            endpoint: settings.publicEndpoint,
            requestChecksumCalculation: 'WHEN_REQUIRED',
            responseChecksumValidation: 'WHEN_REQUIRED',
          })
        : this.client;
  }

  private fail(err: unknown, key?: string): Error {
    return toS3Failure(err, { bucket: this.bucket, key, maxAttempts: this.maxAttempts });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertSafeKey(key, 'key');
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: res.ContentLength ?? 0, ...(res.ETag ? { etag: res.ETag } : {}) };
    } catch (err) {
      const { status } = summarizeS3Error(err);
      // A HEAD answer has no body, so a missing bucket and a missing key both arrive as a bare 404.
      if (status === 404) {
        await this.check();
        return undefined;
      }
      // A bare 403 could be bad credentials or a policy; a one-byte GET brings the error code that tells.
      if (status === 403 || status === 400) {
        throw this.fail(
          await this.explain(err, async () => {
            const res = await this.client.send(
              new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: 'bytes=0-0' }),
            );
            (res.Body as Readable | undefined)?.destroy();
          }),
          key,
        );
      }
      throw this.fail(err, key);
    }
  }

  /** The error of a probing request that returns a body (and so an error code), or `err` if it succeeds. */
  private async explain(err: unknown, probe: () => Promise<unknown>): Promise<unknown> {
    try {
      await probe();
      return err;
    } catch (probeErr) {
      return probeErr;
    }
  }

  /**
   * Streams the object to `destPath` with back-pressure, so memory stays flat whatever the size. When the
   * connection breaks mid-body, the rest is fetched with a Range request pinned to the same ETag.
   */
  async download(
    key: string,
    destPath: string,
    signal?: AbortSignal,
    expected: { etag?: string } = {},
  ): Promise<void> {
    assertSafeKey(key, 'key');
    let written = 0;
    // Pinned from the first request on when the caller checked a version (its size against the limit):
    // an object replaced between that check and this read is not read.
    let etag = expected.etag;
    let total: number | undefined;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      let body: Readable;
      try {
        const res = await this.client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            ...(etag ? { IfMatch: etag } : {}),
            ...(written > 0 ? { Range: `bytes=${written}-` } : {}),
          }),
          { abortSignal: signal },
        );
        if (written === 0) {
          etag = res.ETag;
          total = res.ContentLength;
        }
        body = res.Body as Readable;
      } catch (err) {
        const { name, status } = summarizeS3Error(err);
        if (etag && (name === 'PreconditionFailed' || status === 412)) {
          throw new TaskFailure('storage_error', 'the input changed while it was being downloaded');
        }
        throw this.fail(err, key);
      }
      try {
        await pipeline(
          body,
          createWriteStream(destPath, written > 0 ? { flags: 'r+', start: written } : {}),
          {
            signal,
          },
        );
      } catch (err) {
        if (isAbortError(err) || signal?.aborted) throw err;
        written = (await stat(destPath)).size;
        if (!isTransientNetworkError(err) || attempt >= this.maxAttempts) throw this.fail(err, key);
        continue;
      }
      written = (await stat(destPath)).size;
      if (total === undefined || written >= total) return;
      if (attempt >= this.maxAttempts) {
        throw new TaskFailure(
          'storage_error',
          `the download from bucket "${this.bucket}" stopped early, ${written} of ${total} bytes`,
        );
      }
    }
  }

  /**
   * Uploads in parts (bounded buffering, parts retried by the SDK); a failed or cancelled multipart upload is
   * aborted, so its parts do not linger in the bucket.
   */
  async upload(key: string, srcPath: string, options: PutOptions): Promise<void> {
    assertSafeKey(key, 'key');
    const { signal } = options;
    signal?.throwIfAborted();
    const body = createReadStream(srcPath);
    const upload = new Upload({
      client: this.client,
      queueSize: PARTS_IN_FLIGHT,
      partSize: PART_SIZE,
      leavePartsOnError: false,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: options.contentType,
        ...(options.cacheControl ? { CacheControl: options.cacheControl } : {}),
      },
    });
    // Only a multipart upload is stopped midway (its parts never become an object); a sent PutObject is let
    // finish, so the caller's cleanup finds and deletes it rather than it landing after.
    const multipart = (await stat(srcPath)).size > PART_SIZE;
    const onAbort = () => void upload.abort();
    if (multipart) signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw this.fail(err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      body.destroy();
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      batch.forEach((k) => assertSafeKey(k, 'key'));
      let errors: { Key?: string; Code?: string }[] | undefined;
      try {
        const res = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        errors = res.Errors;
      } catch (err) {
        throw this.fail(err);
      }
      const first = errors?.find((e) => e.Code !== 'NoSuchKey');
      if (first) throw this.fail({ name: first.Code ?? 'DeleteFailed' });
    }
  }

  async list(prefix: string): Promise<string[]> {
    const base = joinKey(prefix);
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: base ? `${base}/` : undefined,
            ContinuationToken: token,
          }),
        );
        for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.fail(err);
    }
    return keys.sort();
  }

  place(prefix: string): StoragePlace {
    return { storage: 's3', bucket: this.bucket, prefix };
  }

  location(key: string): ObjectLocation {
    const loc: ObjectLocation = { key, bucket: this.bucket };
    if (this.publicBaseUrl) loc.url = `${this.publicBaseUrl.replace(/\/+$/, '')}/${keyUrlPath(key)}`;
    return loc;
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const { status } = summarizeS3Error(err);
      // HEAD answers carry no error code; a bare 404 on the bucket itself can only mean it is missing.
      if (status === 404) throw this.fail({ name: 'NoSuchBucket' });
      if (status === 403 || status === 400) {
        throw this.fail(
          await this.explain(err, () =>
            this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 })),
          ),
        );
      }
      throw this.fail(err);
    }
  }

  /** A presigned PUT URL; the client must send the same Content-Type, which is part of the signature. */
  async createUploadUrl(key: string, contentType: string, expiresInSeconds: number): Promise<string> {
    assertSafeKey(key, 'key');
    try {
      return await getSignedUrl(
        this.presignClient,
        new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }),
        { expiresIn: expiresInSeconds, signableHeaders: new Set(['content-type']) },
      );
    } catch (err) {
      throw this.fail(err);
    }
  }

  async createDownloadUrl(key: string, expiresInSeconds: number): Promise<string> {
    assertSafeKey(key, 'key');
    try {
      // The service's own endpoint (not S3_PUBLIC_ENDPOINT): workers read it.
      return await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
        expiresIn: expiresInSeconds,
      });
    } catch (err) {
      throw this.fail(err);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    if (this.presignClient !== this.client) this.presignClient.destroy();
  }
}
