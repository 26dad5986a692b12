import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

/** s3rver checks the access key id (only this one exists) but not SigV4 signatures, so any secret works. */
export const s3rverAccessKeyId = 'S3RVER';

export interface TestS3 {
  endpoint: string;
  port: number;
  /** A client of the test's own, for arranging and inspecting buckets. */
  client: S3Client;
  /** Creates a bucket with a unique name starting with `prefix`. */
  createBucket(prefix?: string): Promise<string>;
  /** A unique bucket name that is not created. */
  bucketName(prefix?: string): string;
  /** Service settings for this server: endpoint, path style, credentials (`secret` defaults to a random one). */
  env(extra?: Record<string, string>, secret?: string): Record<string, string>;
  putFile(bucket: string, key: string, file: string, contentType?: string): Promise<void>;
  /** Every object under the prefix with its metadata. */
  listObjects(bucket: string, prefix: string): Promise<StoredObject[]>;
  /** Downloads every object under `prefix` into `dir`, keeping the relative paths. */
  downloadPrefix(bucket: string, prefix: string, dir: string): Promise<StoredObject[]>;
  stop(): Promise<void>;
}

export interface StoredObject {
  key: string;
  size: number;
  contentType?: string;
  cacheControl?: string;
}

// Run in a child process: the test process's memory then measures the service alone, and s3rver's own work
// (hashing, disk I/O) does not stall the event loop of the service under test.
// s3rver's delete removes a key's emptied directories, racing a concurrent put into the same directory (its
// write then fails unhandled and kills the server); S3 has no directories, so the test server keeps them.
const childScript = `
const S3rver = require(process.env.S3RVER_MODULE);
const FilesystemStore = require(require('path').join(process.env.S3RVER_MODULE, '../stores/filesystem.js'));
FilesystemStore.prototype.deleteObject = async function (bucket, key) {
  await Promise.all(['object', 'object.md5', 'metadata.json'].map((kind) =>
    require('fs').promises.unlink(this.getResourcePath(bucket, key, kind)).catch((err) => {
      if (err.code !== 'ENOENT') throw err;
    })));
};
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: process.env.S3RVER_DIR });
server.run().then((address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\\n'),
  (err) => { console.error(err); process.exit(1); });
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
`;

/** Starts a real s3rver on 127.0.0.1 on a free port, its data in a fresh temporary directory. */
export async function startS3Server(): Promise<TestS3> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dvc-s3rver-'));
  const modulePath = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(process.execPath, ['-e', childScript], {
    // stdin is a pipe so the child stops by itself if this process dies.
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { PATH: process.env.PATH ?? '', S3RVER_MODULE: modulePath, S3RVER_DIR: dir },
  });
  let port: number;
  try {
    port = await readPort(child);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3rverAccessKeyId, secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucketName = (prefix = 'dvc') => `${prefix}-${randomBytes(5).toString('hex')}`.toLowerCase();
  let stopped: Promise<void> | undefined;

  const listObjects = async (bucket: string, prefix: string): Promise<StoredObject[]> => {
    const out: StoredObject[] = [];
    let token: string | undefined;
    do {
      const res = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of res.Contents ?? []) {
        // Removed between the list and its head (the service's completion record, once the task is settled):
        // not in the bucket any more.
        const head = await client
          .send(new HeadObjectCommand({ Bucket: bucket, Key: o.Key! }))
          .catch((err: { $metadata?: { httpStatusCode?: number } }) => {
            if (err.$metadata?.httpStatusCode === 404) return undefined;
            throw err;
          });
        if (!head) continue;
        out.push({
          key: o.Key!,
          size: head.ContentLength ?? 0,
          contentType: head.ContentType,
          cacheControl: head.CacheControl,
        });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => a.key.localeCompare(b.key));
  };

  return {
    endpoint,
    port,
    client,
    bucketName,
    createBucket: async (prefix) => {
      const name = bucketName(prefix);
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    env: (extra = {}, secret = `test-secret-${randomBytes(8).toString('hex')}`) => ({
      STORAGE: 's3',
      S3_ENDPOINT: endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: s3rverAccessKeyId,
      AWS_SECRET_ACCESS_KEY: secret,
      ...extra,
    }),
    putFile: async (bucket, key, file, contentType = 'video/mp4') => {
      const body = createReadStream(file);
      try {
        await new Upload({
          client,
          params: { Bucket: bucket, Key: key, Body: body, ContentType: contentType },
          queueSize: 2,
        }).done();
      } finally {
        body.destroy();
      }
    },
    listObjects,
    downloadPrefix: async (bucket, prefix, dir) => {
      const objects = await listObjects(bucket, prefix);
      for (const o of objects) {
        const dest = path.join(dir, o.key.slice(prefix.length).replace(/^\/+/, ''));
        await mkdir(path.dirname(dest), { recursive: true });
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.key }));
        await pipeline(res.Body as Readable, createWriteStream(dest));
      }
      return objects;
    },
    stop: () =>
      (stopped ??= (async () => {
        client.destroy();
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}

function readPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('s3rver did not start within 15 s')), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const line = buf.split('\n')[0];
      if (buf.includes('\n') && line) {
        clearTimeout(timer);
        try {
          resolve((JSON.parse(line) as { port: number }).port);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with code ${code} before it listened`));
    });
  });
}
