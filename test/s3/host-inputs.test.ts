import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskFailure } from '../../src/domain/failures.js';
import { HOST_INPUTS_DIR, HostInputs, sweepHostInputs } from '../../src/jobs/host-inputs.js';
import { stepInput } from '../../src/jobs/step-input.js';
import { createLogger } from '../../src/process/logger.js';
import { S3Storage } from '../../src/storage/s3-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { s3rverAccessKeyId, startS3Server, type TestS3 } from '../helpers/s3-server.js';

describe("a split task's input on a host without byte-range reads: downloaded once per host", () => {
  let s3: TestS3;
  let root: string;
  let store: S3Storage;
  let bucket: string;
  const logger = createLogger('silent');
  let downloads = 0;
  /** The real S3 storage, its downloads counted. */
  let counted: Storage;
  const content = randomBytes(3 * 1024 * 1024);

  before(async () => {
    s3 = await startS3Server();
    root = await mkdtemp(path.join(tmpdir(), 'dvc-host-inputs-'));
    bucket = await s3.createBucket('in');
    store = new S3Storage({
      bucket,
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3rverAccessKeyId, secretAccessKey: 'S3RVER' },
      maxAttempts: 2,
    });
    counted = Object.assign(Object.create(store) as S3Storage, {
      download: (...args: Parameters<Storage['download']>) => {
        downloads++;
        return store.download(...args);
      },
    });
    const file = path.join(root, 'film.ts');
    await writeFile(file, content);
    await s3.putFile(bucket, 'film.ts', file);
  });
  after(async () => {
    await store.close();
    await s3.stop();
    await rm(root, { recursive: true, force: true });
  });

  const fetchIn = (hosts: HostInputs, taskId = 'task-1', key = 'film.ts') =>
    hosts.fetch({ storage: counted, taskId, key, maxInputBytes: 1e9 });

  test('the jobs of two processes sharing a work directory download it once, and read the same file', async () => {
    const workDir = await mkdtemp(path.join(root, 'work-'));
    const [a, b] = [new HostInputs(workDir, logger), new HostInputs(workDir, logger)];
    downloads = 0;
    const paths = await Promise.all([fetchIn(a), fetchIn(b), fetchIn(a), fetchIn(b)]);
    assert.equal(downloads, 1, 'one download');
    assert.equal(new Set(paths).size, 1);
    assert.ok(paths[0]!.startsWith(path.join(workDir, HOST_INPUTS_DIR)));
    assert.deepEqual(await readFile(paths[0]!), content);
    assert.equal(await fetchIn(b), paths[0], 'a later job reads it too');
    assert.equal(downloads, 1);
    // Nothing else left beside it: no lock, no partial download.
    assert.deepEqual(await readdir(path.dirname(paths[0]!)), [path.basename(paths[0]!)]);
    await a.removeTask('task-1');
    assert.deepEqual(await readdir(path.dirname(paths[0]!)), [], "gone with the task's end");
  });

  test("a download in another process is waited for; a dead one's lock is taken over", async () => {
    const workDir = await mkdtemp(path.join(root, 'work-'));
    const hosts = new HostInputs(workDir, logger);
    downloads = 0;
    const file = await fetchIn(hosts);
    const kept = path.join(root, 'kept');
    await copyFile(file, kept);
    await rm(file);
    // Another process holds the lock and renames its download in: this one waits and downloads nothing.
    await writeFile(`${file}.lock`, '');
    const waiting = fetchIn(new HostInputs(workDir, logger));
    await new Promise((r) => setTimeout(r, 700));
    await copyFile(kept, file);
    await rm(`${file}.lock`);
    assert.equal(await waiting, file);
    assert.equal(downloads, 1, 'the other download was used');
    // A lock its process left a minute ago, dead: taken over, downloaded again.
    await rm(file);
    await writeFile(`${file}.lock`, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(`${file}.lock`, old, old);
    assert.equal(await fetchIn(new HostInputs(workDir, logger)), file);
    assert.equal(downloads, 2);
    assert.deepEqual(await readFile(file), content);
  });

  test('a new upload under the same key is another copy; an unused one expires; a missing input fails clearly', async () => {
    const workDir = await mkdtemp(path.join(root, 'work-'));
    const hosts = new HostInputs(workDir, logger);
    const first = await fetchIn(hosts, 'task-2');
    const replaced = path.join(root, 'replaced.ts');
    await writeFile(replaced, randomBytes(1024));
    await s3.putFile(bucket, 'film.ts', replaced);
    const second = await fetchIn(hosts, 'task-2');
    assert.notEqual(second, first, 'never a copy of the version before');
    assert.equal((await stat(second)).size, 1024);
    await s3.putFile(bucket, 'film.ts', path.join(root, 'film.ts'));

    const old = new Date(Date.now() - 3 * 3600_000);
    await utimes(first, old, old);
    assert.equal(await sweepHostInputs(workDir, logger), 1);
    assert.deepEqual(await readdir(path.join(workDir, HOST_INPUTS_DIR)), [path.basename(second)]);

    await assert.rejects(fetchIn(hosts, 'task-3', 'gone.ts'), (err: TaskFailure) => {
      assert.equal(err.code, 'input_not_found');
      return true;
    });
  });

  test("a chunk job reads an indexed container's byte ranges by URL, and anything else from the host's copy", async () => {
    const workDir = await mkdtemp(path.join(root, 'work-'));
    const hostInputs = new HostInputs(workDir, logger);
    const o = { storage: counted, taskId: 'task-4', key: 'film.ts', hostInputs, workDir, maxInputBytes: 1e9 };
    downloads = 0;
    assert.match(await stepInput({ ...o, indexed: true }), /^http:\/\/127\.0\.0\.1:\d+\/.*film\.ts\?/);
    assert.equal(downloads, 0);
    const local = await stepInput({ ...o, indexed: false });
    assert.ok(local.startsWith(path.join(workDir, HOST_INPUTS_DIR)));
    assert.equal(downloads, 1);
  });
});
