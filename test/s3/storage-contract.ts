import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TaskFailure } from '../../src/domain/failures.js';
import type { Storage } from '../../src/storage/storage.js';

/**
 * What every Storage adapter promises, run against each implementation. `create` gives a fresh, empty
 * storage for the suite; `cleanup` removes whatever it made.
 */
export function storageContract(
  name: string,
  create: () => Promise<{ storage: Storage; cleanup: () => Promise<void> }>,
): void {
  describe(`Storage contract: ${name}`, () => {
    let storage: Storage;
    let cleanup: () => Promise<void>;
    let dir: string;
    before(async () => {
      ({ storage, cleanup } = await create());
      dir = await mkdtemp(path.join(tmpdir(), 'dvc-contract-'));
    });
    after(async () => {
      await storage.close();
      await cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    const file = async (bytes: number) => {
      const p = path.join(dir, randomBytes(4).toString('hex'));
      const data = randomBytes(bytes);
      await writeFile(p, data);
      return { path: p, data };
    };

    test('upload, head, download give back the same bytes', async () => {
      const src = await file(70_000);
      await storage.upload('pkg/a/init.mp4', src.path, { contentType: 'video/mp4' });
      assert.equal((await storage.head('pkg/a/init.mp4'))?.size, 70_000);
      const dest = path.join(dir, 'downloaded');
      await storage.download('pkg/a/init.mp4', dest);
      assert.ok((await readFile(dest)).equals(src.data));
    });

    test('an upload replaces an existing object', async () => {
      await storage.upload('pkg/replace.bin', (await file(10)).path, { contentType: 'video/mp4' });
      await storage.upload('pkg/replace.bin', (await file(20)).path, { contentType: 'video/mp4' });
      assert.equal((await storage.head('pkg/replace.bin'))?.size, 20);
    });

    test('list returns the keys under a prefix, not those of a sibling sharing its first letters', async () => {
      const src = (await file(5)).path;
      for (const key of ['list/x/1.m4s', 'list/x/2.m4s', 'list/x/sub/3.m4s', 'list/xy/4.m4s']) {
        await storage.upload(key, src, { contentType: 'video/mp4' });
      }
      assert.deepEqual(await storage.list('list/x'), ['list/x/1.m4s', 'list/x/2.m4s', 'list/x/sub/3.m4s']);
      assert.deepEqual(await storage.list('list/x/'), ['list/x/1.m4s', 'list/x/2.m4s', 'list/x/sub/3.m4s']);
      assert.deepEqual(await storage.list('list/none'), []);
    });

    test('delete removes the keys and ignores keys that do not exist', async () => {
      const src = (await file(5)).path;
      await storage.upload('del/1.m4s', src, { contentType: 'video/mp4' });
      await storage.upload('del/2.m4s', src, { contentType: 'video/mp4' });
      await storage.delete(['del/1.m4s', 'del/missing.m4s']);
      assert.equal(await storage.head('del/1.m4s'), undefined);
      assert.deepEqual(await storage.list('del'), ['del/2.m4s']);
      await storage.delete([]);
    });

    test('a missing object: head gives undefined, download fails with input_not_found', async () => {
      assert.equal(await storage.head('nope/missing.mp4'), undefined);
      await assert.rejects(
        storage.download('nope/missing.mp4', path.join(dir, 'missing')),
        (err: unknown) =>
          err instanceof TaskFailure && err.code === 'input_not_found' && err.message === 'input not found',
      );
    });

    test('unsafe keys are refused before any request', async () => {
      await assert.rejects(storage.head('../escape.mp4'));
      await assert.rejects(storage.upload('a/../../b', (await file(1)).path, { contentType: 'video/mp4' }));
    });

    test('location names the key; check passes', async () => {
      assert.equal(storage.location('pkg/manifest.mpd').key, 'pkg/manifest.mpd');
      assert.equal(storage.place('pkg').prefix, 'pkg');
      await storage.check();
    });

    test('local files are a capability: a path in place only where the object is a file on this host', async () => {
      await storage.upload('pkg/in-place.bin', (await file(7)).path, { contentType: 'video/mp4' });
      const local = storage.localFiles;
      if (storage.place('pkg').storage === 'local') {
        assert.ok(local, 'a local disk offers its files');
        assert.equal((await stat(local.pathOf('pkg/in-place.bin'))).size, 7);
        assert.throws(() => local.pathOf('../escape.bin'));
      } else {
        assert.equal(local, undefined);
        assert.ok(storage.place('pkg').bucket);
      }
    });
  });
}
