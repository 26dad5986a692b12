import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { generateClip } from '../helpers/media.js';
import { postJson, startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';

const run = promisify(execFile);

describe('configured limits', () => {
  const services: TestService[] = [];
  let clip: string;
  before(async () => {
    clip = await generateClip({ width: 320, height: 180, seconds: 2, audio: false, fps: 25 });
  });
  after(async () => {
    for (const s of services) await s.close();
  });

  test('MAX_QUEUED_TASKS: a full queue answers 503 with Retry-After; a repeated request keeps its task', async () => {
    const svc = await startTestService({ MAX_QUEUED_TASKS: '2' }, { worker: false });
    services.push(svc);
    const keyed = (video_filename: string) =>
      fetch(`${svc.url}/encode`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'upload-a' },
        body: JSON.stringify({ video_filename }),
      });
    const first = (await (await keyed('a.mp4')).json()) as { task_id: string };
    await submit(svc.url, 'b.mp4');
    // The client's retry of a request that got through: its task, not a 503.
    const again = await keyed('a.mp4');
    assert.equal(again.status, 202);
    assert.equal(((await again.json()) as { task_id: string }).task_id, first.task_id);
    const res = await fetch(`${svc.url}/encode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ video_filename: 'c.mp4' }),
    });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '30');
    assert.deepEqual(await res.json(), {
      error: 'queue_full',
      message: 'too many tasks are waiting; try again later',
    });
  });

  test('BODY_LIMIT_BYTES: a body over the limit is a 413', async () => {
    const svc = await startTestService({ BODY_LIMIT_BYTES: '2048' }, { worker: false });
    services.push(svc);
    const res = await postJson(`${svc.url}/encode`, {
      video_filename: 'a'.repeat(1000),
      callback_url: 'x'.repeat(1100),
    });
    assert.equal(res.status, 413);
    assert.equal(res.body.error, 'payload_too_large');
  });

  test('duration, picture size and frame rate limits fail the task and name the limit', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ MAX_DURATION_SECONDS: '1' }, /^the input lasts 2 s, over the limit of 1 s$/],
      [{ MAX_PIXELS: '50000' }, /^the picture is 320x180, over the limit of 50000 pixels$/],
      [{ MAX_INPUT_FRAME_RATE: '24' }, /^the frame rate is 25\.00 fps, over the limit of 24 fps$/],
      [{ MAX_INPUT_BYTES: '1000' }, /^the input is \d+ bytes, over the limit of 1000 bytes$/],
    ];
    for (const [env, reason] of cases) {
      const svc = await startTestService(env);
      services.push(svc);
      await copyFile(clip, path.join(svc.inputDir, 'clip.mp4'));
      const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'clip.mp4'), 60_000);
      assert.equal(doc.status, 'failed', JSON.stringify(env));
      assert.equal(doc.error_code, 'limit_exceeded');
      assert.match(doc.error ?? '', reason);
      assert.equal((doc as unknown as { attempts: number }).attempts, 1, 'a limit is not retried');
    }
  });

  test('the disk-space check fails a task whose work directory is too small, before any download', async (t) => {
    // An 8 MB tmpfs as WORK_DIR, below the margin every task keeps (needs root, as in CI; skipped elsewhere).
    const small = await mkdtemp(path.join(tmpdir(), 'dvc-small-disk-'));
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', small]);
    } catch (err) {
      await rm(small, { recursive: true, force: true });
      t.skip(`cannot mount a tmpfs here: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    try {
      const svc = await startTestService({ WORK_DIR: small, TASK_MAX_ATTEMPTS: '1' });
      services.push(svc);
      await copyFile(clip, path.join(svc.inputDir, 'clip.mp4'));
      const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'clip.mp4'), 60_000);
      assert.equal(doc.status, 'failed');
      assert.equal(doc.error_code, 'disk_full');
      assert.match(
        doc.error ?? '',
        /^not enough free disk space for this input: \d+ MB needed, \d+ MB free$/,
      );
      await svc.close();
      assert.deepEqual(await readdir(small), [], 'the work directory is removed');
    } finally {
      await run('umount', [small]);
      await rm(small, { recursive: true, force: true });
    }
  });
  test('a small input whose package would not fit fails with disk_full once it is planned, before encoding', async (t) => {
    // 10 minutes of a still picture: a small file, but 10 min at 550k + 128k is a 50 MB package (the 32k
    // source audio encoded at AUDIO_BITRATE, not copied, so the estimate is the one this test was made for).
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-long-still-'));
    const small = path.join(dir, 'work');
    const still = path.join(dir, 'still.mp4');
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'color=c=gray:size=640x360:rate=5:duration=600'],
      ...['-f', 'lavfi', '-i', 'anullsrc=r=48000:cl=stereo', '-t', '600'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-b:a', '32k', still],
    ]);
    await run('mkdir', [small]);
    try {
      // Room for the fetch's margin, not for the package (its bound: 550k and 128k for 600 s, and the margin).
      await run('mount', ['-t', 'tmpfs', '-o', 'size=60m', 'tmpfs', small]);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      t.skip(`cannot mount a tmpfs here: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    try {
      const svc = await startTestService({
        WORK_DIR: small,
        TASK_MAX_ATTEMPTS: '1',
        QC_MODE: 'off',
        AUDIO_COPY: 'false',
      });
      services.push(svc);
      await copyFile(still, path.join(svc.inputDir, 'still.mp4'));
      const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'still.mp4'), 60_000);
      assert.equal(doc.status, 'failed');
      assert.equal(doc.error_code, 'disk_full');
      assert.match(doc.error ?? '', /^not enough free disk space for this input: 70 MB needed, \d+ MB free$/);
      await svc.close();
      assert.deepEqual(await readdir(small), [], 'the work directory is removed');
    } finally {
      await run('umount', [small]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
