import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { postJson, startTestService, type TestService } from '../helpers/service.js';

describe('Idempotency-Key', () => {
  let root: string;
  let svc: TestService;
  const encode = (body: unknown, key?: string) =>
    postJson(`${svc.url}/encode`, body, key === undefined ? {} : { 'idempotency-key': key });

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-idem-'));
    // API only: the tasks stay queued, which is all these tests look at.
    svc = await startTestService({}, { worker: false, root, keepRoot: true });
  });
  after(async () => {
    await svc?.close();
    await rm(root, { recursive: true, force: true });
  });

  test('the same key and body return the same task', async () => {
    const body = { video_filename: 'a.mp4', callback_url: 'https://example.com/hook' };
    const first = await encode(body, 'key-1');
    const again = await encode(body, 'key-1');
    assert.equal(first.status, 202);
    assert.equal(again.status, 202);
    assert.equal(again.body.task_id, first.body.task_id);
    // Field order is not part of the request's identity.
    const reordered = await encode(
      { callback_url: 'https://example.com/hook', video_filename: 'a.mp4' },
      'key-1',
    );
    assert.equal(reordered.body.task_id, first.body.task_id);
  });

  test('the same key with another body is a 409 and creates nothing', async () => {
    const first = await encode({ video_filename: 'b.mp4' }, 'key-2');
    assert.equal(first.status, 202);
    const queued = (await svc.running.services.queue.counts()).queued;
    const other = await encode({ video_filename: 'c.mp4' }, 'key-2');
    assert.equal(other.status, 409);
    assert.equal(other.body.error, 'conflict');
    assert.match(String(other.body.message), /Idempotency-Key was already used with a different request/);
    const moreFields = await encode(
      { video_filename: 'b.mp4', callback_url: 'https://example.com/x' },
      'key-2',
    );
    assert.equal(moreFields.status, 409);
    assert.equal((await svc.running.services.queue.counts()).queued, queued, 'no task was added');
  });

  test('another key, or none, makes a new task', async () => {
    const a = await encode({ video_filename: 'd.mp4' }, 'key-3');
    const b = await encode({ video_filename: 'd.mp4' }, 'key-4');
    const c = await encode({ video_filename: 'd.mp4' });
    const d = await encode({ video_filename: 'd.mp4' });
    assert.equal(new Set([a, b, c, d].map((r) => r.body.task_id)).size, 4);
  });

  test('a key of more than 255 characters is a 400', async () => {
    const res = await encode({ video_filename: 'e.mp4' }, 'k'.repeat(256));
    assert.equal(res.status, 400);
    assert.match(String(res.body.message), /Idempotency-Key must be 1 to 255 characters/);
  });

  test('keys survive a restart', async () => {
    const first = await encode({ video_filename: 'f.mp4' }, 'key-restart');
    await svc.close();
    svc = await startTestService({}, { worker: false, root, keepRoot: true });
    const again = await encode({ video_filename: 'f.mp4' }, 'key-restart');
    assert.equal(again.status, 202);
    assert.equal(again.body.task_id, first.body.task_id);
    assert.equal((await encode({ video_filename: 'g.mp4' }, 'key-restart')).status, 409);
  });
});
