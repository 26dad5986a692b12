import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { LocalStorage } from '../../src/storage/local-storage.js';
import { S3Storage } from '../../src/storage/s3-storage.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { storageContract } from './storage-contract.js';

let s3: TestS3;
before(async () => {
  s3 = await startS3Server();
});
after(async () => {
  await s3.stop();
});

storageContract('local disk', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'dvc-local-'));
  return { storage: new LocalStorage(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});

storageContract('S3 (s3rver over HTTP)', async () => {
  const bucket = await s3.createBucket('contract');
  const storage = new S3Storage({
    bucket,
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 3,
  });
  return { storage, cleanup: async () => {} };
});
