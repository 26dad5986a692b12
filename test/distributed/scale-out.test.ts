import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/process/logger.js';
import { BullMqTaskQueue } from '../../src/queue/bullmq-queue.js';
import { generateClip } from '../helpers/media.js';
import { checkDashPackage } from '../helpers/package-check.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { getJson, submit, waitForFinal, type StatusDoc } from '../helpers/service.js';
import { startProcess, type ServiceProcess } from './processes.js';

/**
 * The scale-out topology as separate real processes: one API (`serve --no-worker`) and two workers
 * (`worker`) sharing a real redis-server (BullMQ) and an S3 server (s3rver), each with its own local state
 * directory as on separate hosts.
 */
describe('scale-out: API and worker processes sharing Redis (BullMQ) and S3', () => {
  let redis: RedisServer;
  let s3: TestS3;
  let root: string;
  let outputBucket: string;
  let callbackServer: Server;
  const callbacks: StatusDoc[] = [];
  const processes: ServiceProcess[] = [];
  let env: Record<string, string>;
  let apiUrl: string;
  let workers: ServiceProcess[];

  const start = async (name: string, args: string[], extra: Record<string, string> = {}) => {
    const stateDir = path.join(root, name);
    await mkdir(stateDir, { recursive: true });
    const proc = startProcess(name, args, { ...env, STATE_DIR: stateDir, ...extra });
    processes.push(proc);
    const started = await proc.waitFor((l) => l.msg === 'dash-video-converter started', 60_000);
    return { proc, address: started.address };
  };
  const startApi = async (name: string) => {
    const { proc, address } = await start(name, ['serve', '--no-worker']);
    assert.ok(address, 'the API logged its address');
    return { proc, url: address };
  };

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-scale-out-'));
    [redis, s3] = await Promise.all([startRedisServer(), startS3Server()]);
    const inputBucket = await s3.createBucket('in');
    outputBucket = await s3.createBucket('out');
    callbackServer = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        callbacks.push(JSON.parse(body) as StatusDoc);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', r));
    const callbackPort = (callbackServer.address() as { port: number }).port;

    const short = await generateClip({ width: 320, height: 180, seconds: 2, audio: true });
    const long = await generateClip({ width: 640, height: 360, seconds: 60, audio: true });
    await Promise.all([
      ...[1, 2, 3, 4, 5, 6].map((i) => s3.putFile(inputBucket, `batch/in${i}.mp4`, short)),
      s3.putFile(inputBucket, 'long.mp4', long),
      s3.putFile(inputBucket, 'long2.mp4', long),
    ]);
    env = {
      ...s3.env({ INPUT_S3_BUCKET: inputBucket, OUTPUT_S3_BUCKET: outputBucket }),
      QUEUE: 'redis',
      REDIS_URL: redis.url,
      QUEUE_PREFIX: `dvc-${randomUUID().slice(0, 8)}`,
      // Short locks so a killed worker's task is found stalled within seconds.
      LEASE_SECONDS: '4',
      TASK_MAX_ATTEMPTS: '3',
      WORKER_CONCURRENCY: '1',
      SHUTDOWN_GRACE_SECONDS: '5',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      X264_PRESET: 'ultrafast',
      LADDER: '144:150k,360:500k',
      SEGMENT_DURATION: '2',
      CALLBACK_URL: `http://127.0.0.1:${callbackPort}/done`,
      CALLBACK_ALLOW_PRIVATE: 'true',
    };
    workers = await Promise.all([
      start('worker-a', ['worker']).then((w) => w.proc),
      start('worker-b', ['worker']).then((w) => w.proc),
    ]);
  });

  after(async () => {
    await Promise.allSettled(processes.map((p) => p.stop(10_000)));
    await new Promise((r) => callbackServer?.close(r));
    await Promise.allSettled([redis?.stop(), s3?.stop()]);
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('six tasks complete across both workers while the API process restarts', async () => {
    const first = await startApi('api-1');
    const ids: string[] = [];
    for (let i = 1; i <= 6; i++) ids.push(await submit(first.url, `batch/in${i}.mp4`));
    // Restart the API between submit and completion: the new process answers from the shared store.
    await first.proc.stop();
    const second = await startApi('api-2');
    apiUrl = second.url;
    for (const id of ids) {
      const { doc } = await waitForFinal(apiUrl, id, 90_000);
      assert.equal(doc.status, 'completed', `${id}: ${doc.error}`);
      assert.equal(doc.output?.manifest?.key, `batch/in${ids.indexOf(id) + 1}/manifest.mpd`);
    }
    const [a, b] = workers.map((w) => w!.tasks('task completed'));
    assert.ok(a!.length > 0 && b!.length > 0, `both workers took tasks (a: ${a!.length}, b: ${b!.length})`);
    assert.deepEqual([...a!, ...b!].sort(), [...ids].sort(), 'every task ran to completion exactly once');
    // One callback per task, sent by the worker that settled it.
    await waitUntil(() => ids.every((id) => callbacks.some((c) => c.task_id === id)));
    for (const id of ids) {
      const sent = callbacks.filter((c) => c.task_id === id);
      assert.equal(sent.length, 1, `one callback for ${id}`);
      assert.equal(sent[0]!.status, 'completed');
    }
  });

  test('a worker killed with SIGKILL mid-encode: its task completes on the other worker', async () => {
    assert.ok(apiUrl, 'the API of the first test runs');
    const id = await submit(apiUrl, 'long.mp4');
    let doc: StatusDoc | undefined;
    await waitUntil(async () => {
      doc = (await getJson(`${apiUrl}/status/${id}`)).body as unknown as StatusDoc;
      return doc.status === 'processing' && doc.stage === 'encode';
    }, 60_000);
    const runner = workers.find((w) => w.tasks('task started').includes(id));
    const other = workers.find((w) => w !== runner)!;
    assert.ok(runner, 'a worker logged that it started the task');
    await runner.kill();
    assert.ok((await getJson(`${apiUrl}/status/${id}`)).body.status !== 'completed', 'killed mid-task');

    const { doc: final } = await waitForFinal(apiUrl, id, 120_000);
    assert.equal(final.status, 'completed', final.error ?? '');
    assert.ok(other.tasks('task completed').includes(id), 'the surviving worker completed it');
    assert.ok((final as unknown as { attempts: number }).attempts >= 2, 'the task ran again');

    // Read the shared store directly, as any API process would.
    const queue = new BullMqTaskQueue(
      {
        kind: 'redis',
        url: redis.url,
        prefix: env.QUEUE_PREFIX!,
        maxAttempts: 3,
        retentionSeconds: 3600,
        leaseMs: 4000,
      },
      createLogger('silent'),
    );
    try {
      assert.deepEqual(await queue.counts(), { queued: 0, processing: 0, completed: 7, failed: 0 });
      const all = await queue.list({ limit: 50 });
      assert.equal(all.tasks.length, 7);
      assert.equal(all.tasks[0]!.id, id, 'newest first');
      assert.ok(
        all.tasks.every((t) => t.status === 'completed'),
        'no task is lost or left processing',
      );
    } finally {
      await queue.close();
    }

    await waitUntil(() => callbacks.some((c) => c.task_id === id));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(callbacks.filter((c) => c.task_id === id).length, 1, 'one callback for the re-run task');

    // What the re-run published is a complete, consistent package.
    const dir = path.join(root, 'long-package');
    await s3.downloadPrefix(outputBucket, 'long/', dir);
    await checkDashPackage(dir, { heights: [144, 360], audio: true, segmentDuration: 2 });
  });

  test('SIGTERM: an idle worker exits; a busy one past its grace (0 s here) hands its task back', async () => {
    const survivor = workers.find((w) => w.child.exitCode === null && w.child.signalCode === null)!;
    const graceful = (await start('worker-c', ['worker'], { SHUTDOWN_GRACE_SECONDS: '0' })).proc;
    await survivor.stop();
    assert.equal(await survivor.exited, 0, 'the idle worker exited cleanly');

    const id = await submit(apiUrl, 'long2.mp4');
    await waitUntil(async () => {
      const doc = (await getJson(`${apiUrl}/status/${id}`)).body as unknown as StatusDoc;
      return doc.status === 'processing' && doc.stage === 'encode';
    }, 60_000);
    assert.ok(graceful.tasks('task started').includes(id));
    const t0 = Date.now();
    await graceful.stop(20_000);
    assert.equal(await graceful.exited, 0, 'the busy worker exited cleanly');
    assert.ok(Date.now() - t0 < 10_000, 'within its grace period and a little');
    assert.ok(graceful.tasks('task handed back').includes(id), 'the task was handed back');
    const back = (await getJson(`${apiUrl}/status/${id}`)).body as unknown as StatusDoc;
    assert.equal(back.status, 'queued');
    assert.equal(back.error, null);

    const next = (await start('worker-d', ['worker'])).proc;
    const { doc } = await waitForFinal(apiUrl, id, 120_000);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.ok(next.tasks('task completed').includes(id));
    await waitUntil(() => callbacks.some((c) => c.task_id === id));
    assert.equal(callbacks.filter((c) => c.task_id === id).length, 1);
  });
});

async function waitUntil(probe: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
