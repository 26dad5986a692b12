import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProcess } from '../distributed/processes.js';
import { generateClip } from '../helpers/media.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import {
  getJson,
  startTestService,
  submit,
  waitForFinal,
  type StatusDoc,
  type TestService,
} from '../helpers/service.js';
import { poll, processesMatching } from './procs.js';

/** A 360p, 10 s source encoded with x264's slowest preset: several seconds of FFmpeg to cancel. */
const slowEnv = { LADDER: '360:800k', X264_PRESET: 'veryslow', OUTPUT_FORMATS: 'dash' };

async function status(svc: TestService, id: string): Promise<StatusDoc> {
  const res = await getJson(`${svc.url}/status/${id}`);
  assert.equal(res.status, 200);
  return res.body as unknown as StatusDoc;
}

/** Waits until FFmpeg runs for this task (its work directory, named after the task, is in the arguments). */
async function waitForEncoder(id: string): Promise<number[]> {
  const pids = await poll(async () => {
    const found = await processesMatching(id);
    return found.length ? found : undefined;
  }, 60_000);
  assert.ok(pids?.length, `an FFmpeg process for task ${id} started`);
  return pids;
}

/** After a cancel: the task is failed and flagged within seconds, its processes and work dir are gone. */
async function assertCancelled(svc: TestService, id: string, cancelledAt: number, stem: string) {
  const doc = await poll(async () => {
    const d = await status(svc, id);
    return d.status === 'failed' ? d : undefined;
  }, 10_000);
  const seconds = (Date.now() - cancelledAt) / 1000;
  assert.equal(doc?.status, 'failed', `the task failed within 10 s of the cancel (${seconds} s)`);
  assert.ok(seconds < 6, `cancelled within seconds (${seconds.toFixed(1)} s)`);
  assert.equal(doc.cancelled, true);
  assert.equal(doc.error, 'cancelled');
  assert.equal(doc.error_code, 'cancelled');
  const left = await poll(async () => ((await processesMatching(id)).length ? undefined : true), 5_000);
  assert.ok(left, `no process of task ${id} is left: ${(await processesMatching(id)).join(', ')}`);
  const work = await readdir(path.join(svc.stateDir, 'work'));
  assert.ok(!work.some((d) => d.includes(id)), 'the work directory is removed');
  const published = await readdir(svc.outputDir).catch(() => [] as string[]);
  assert.ok(!published.includes(stem), 'nothing is published in the output dir');
}

/** The same tests on the embedded SQLite queue and on BullMQ with a real redis-server. */
const backends: { name: string; env(): Promise<Record<string, string>> }[] = [
  { name: 'sqlite', env: async () => ({}) },
  {
    name: 'bullmq',
    env: async () => {
      redis ??= await startRedisServer();
      return { QUEUE: 'redis', REDIS_URL: redis.url, QUEUE_PREFIX: `dvc-cancel-${randomUUID().slice(0, 8)}` };
    },
  },
];
let redis: RedisServer | undefined;
after(async () => {
  await redis?.stop();
});

for (const backend of backends) {
  describe(`cancel (${backend.name})`, () => {
    let svc: TestService;
    let clip: string;
    before(async () => {
      clip = await generateClip({ width: 640, height: 360, seconds: 10, audio: true });
      svc = await startTestService({ ...slowEnv, ...(await backend.env()), WORKER_CONCURRENCY: '1' });
    });
    after(async () => {
      await svc?.close();
    });

    test('a running task stops within seconds: FFmpeg killed, work dir removed, nothing published', async () => {
      await copyFile(clip, path.join(svc.inputDir, 'running.mp4'));
      const id = await submit(svc.url, 'running.mp4');
      await waitForEncoder(id);
      const at = Date.now();
      const res = await fetch(`${svc.url}/tasks/${id}/cancel`, { method: 'POST' });
      assert.equal(res.status, 200);
      await assertCancelled(svc, id, at, 'running');
    });

    test('a queued task fails at once and never runs; DELETE is an alias', async () => {
      await copyFile(clip, path.join(svc.inputDir, 'first.mp4'));
      await copyFile(clip, path.join(svc.inputDir, 'second.mp4'));
      const first = await submit(svc.url, 'first.mp4');
      const second = await submit(svc.url, 'second.mp4');
      await waitForEncoder(first);
      assert.equal((await status(svc, second)).status, 'queued', 'one worker slot: the second task waits');

      const res = await fetch(`${svc.url}/tasks/${second}`, { method: 'DELETE' });
      assert.equal(res.status, 200);
      const doc = (await res.json()) as StatusDoc;
      assert.equal(doc.status, 'failed', 'a queued task is failed by the cancel itself');
      assert.equal(doc.cancelled, true);
      assert.equal(doc.error, 'cancelled');

      const at = Date.now();
      await fetch(`${svc.url}/tasks/${first}/cancel`, { method: 'POST' });
      await assertCancelled(svc, first, at, 'first');
      const after = await status(svc, second);
      assert.equal((after as unknown as { attempts: number }).attempts, 0, 'the queued task never ran');
      assert.ok(!(await readdir(svc.outputDir)).includes('second'));
    });

    test('cancelling a finished task changes nothing; an unknown id is 404', async () => {
      await copyFile(
        await generateClip({ width: 320, height: 180, seconds: 1, audio: false }),
        path.join(svc.inputDir, 'done.mp4'),
      );
      const id = await submit(svc.url, 'done.mp4');
      await waitForFinal(svc.url, id, 120_000);
      const res = await fetch(`${svc.url}/tasks/${id}/cancel`, { method: 'POST' });
      const doc = (await res.json()) as StatusDoc;
      assert.equal(doc.status, 'completed');
      assert.equal(doc.cancelled, false);
      const missing = await fetch(`${svc.url}/tasks/00000000-0000-0000-0000-000000000000/cancel`, {
        method: 'POST',
      });
      assert.equal(missing.status, 404);
    });
  });

  describe(`cancel across processes (${backend.name}: API and worker with queues of their own)`, () => {
    let root: string;
    let worker: TestService;
    let api: TestService;
    before(async () => {
      root = await mkdtemp(path.join(tmpdir(), 'dvc-cancel-split-'));
      // The default 30 s lease: the worker must still notice the cancel within seconds.
      worker = await startTestService(
        { ...slowEnv, LEASE_SECONDS: '30' },
        { api: false, root, keepRoot: true },
      );
      api = await startTestService({ ...slowEnv }, { worker: false, root, keepRoot: true });
    });
    after(async () => {
      await api?.close();
      await worker?.close();
      await rm(root, { recursive: true, force: true });
    });

    test('a cancel through the API reaches the worker within seconds', async () => {
      await copyFile(
        await generateClip({ width: 640, height: 360, seconds: 10, audio: true }),
        path.join(api.inputDir, 'split.mp4'),
      );
      const id = await submit(api.url, 'split.mp4');
      await waitForEncoder(id);
      const at = Date.now();
      const res = await fetch(`${api.url}/tasks/${id}/cancel`, { method: 'POST' });
      assert.equal(res.status, 200);
      await assertCancelled(api, id, at, 'split');
    });
  });

  describe(`a task whose worker process died (${backend.name})`, () => {
    test('once its lease lapses it shows requeued with next_run_at, and a cancel ends it at once', async () => {
      const root = await mkdtemp(path.join(tmpdir(), 'dvc-cancel-dead-'));
      const env = { ...slowEnv, ...(await backend.env()), LEASE_SECONDS: '2' };
      const api = await startTestService(env, { worker: false, root, keepRoot: true });
      const worker = startProcess('worker', ['worker'], {
        ...env,
        INPUT_DIR: api.inputDir,
        OUTPUT_DIR: api.outputDir,
        STATE_DIR: api.stateDir,
        LOG_LEVEL: 'info',
      });
      try {
        await copyFile(
          await generateClip({ width: 640, height: 360, seconds: 10, audio: true }),
          path.join(api.inputDir, 'dead.mp4'),
        );
        const id = await submit(api.url, 'dead.mp4');
        await waitForEncoder(id);
        await worker.kill();
        const requeued = await poll(async () => {
          const d = await status(api, id);
          return d.stage === 'requeued' ? d : undefined;
        }, 10_000);
        assert.ok(
          requeued,
          `the lost run shows within seconds of the lease (${(await status(api, id)).stage})`,
        );
        assert.equal(requeued.status, 'queued');
        assert.equal(requeued.progress, 0);
        const due = requeued.next_run_at;
        assert.ok(typeof due === 'string' && !Number.isNaN(Date.parse(due)), `next_run_at: ${due}`);
        const res = await fetch(`${api.url}/tasks/${id}/cancel`, { method: 'POST' });
        assert.equal(res.status, 200);
        const answer = (await res.json()) as StatusDoc;
        assert.equal(answer.status, 'failed', 'the cancel ended it at once');
        assert.equal(answer.cancelled, true);
        assert.equal(answer.error_code, 'cancelled');
        assert.equal(answer.next_run_at, null);
        const after = await status(api, id);
        assert.equal(after.status, 'failed');
        assert.equal(after.stage, 'cancelled');
      } finally {
        await worker.kill();
        await api.close();
        await rm(root, { recursive: true, force: true });
      }
    });
  });
}
