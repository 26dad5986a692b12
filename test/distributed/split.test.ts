import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { checkDashPackage, joinRepresentation, parseMpd } from '../helpers/package-check.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { decodedFrames, videoTimeline } from '../helpers/split.js';
import { getJson, postJson, submit, waitForFinal } from '../helpers/service.js';
import { startProcess, type ServiceProcess } from './processes.js';

const run = promisify(execFile);

const waitUntil = async (check: () => boolean | Promise<boolean>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
};

/**
 * Split and stitch in the scale-out topology: an API process and two worker processes on a real redis-server
 * (BullMQ: a split task's chunk jobs are children of its job) and an S3 server (chunk outputs wait there).
 */
describe('split and stitch on BullMQ with two worker processes', () => {
  let redis: RedisServer;
  let s3: TestS3;
  let root: string;
  let inBucket: string;
  let outBucket: string;
  let env: Record<string, string>;
  let apiUrl: string;
  let sourceFrames: number;
  let tsFrames: number;
  const workers: ServiceProcess[] = [];
  const processes: ServiceProcess[] = [];

  const start = async (name: string, args: string[]) => {
    const stateDir = path.join(root, name);
    await mkdir(stateDir, { recursive: true });
    const proc = startProcess(name, args, { ...env, STATE_DIR: stateDir });
    processes.push(proc);
    const started = await proc.waitFor((l) => l.msg === 'dash-video-converter started', 60_000);
    return { proc, address: started.address };
  };
  const stepsOf = (w: ServiceProcess, id: string, msg: string) =>
    w.lines.filter((l) => l.taskId === id && l.msg === msg).map((l) => l.step as string);

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-split-'));
    [redis, s3] = await Promise.all([startRedisServer(), startS3Server()]);
    inBucket = await s3.createBucket('in');
    outBucket = await s3.createBucket('out');
    const clip = await generateClip({ width: 1280, height: 720, seconds: 14, audio: true });
    sourceFrames = await decodedFrames(clip);
    // Smaller for the fault tests: they count chunk jobs, not frames.
    const small = await generateClip({ width: 640, height: 360, seconds: 14, audio: true });
    // The same picture in MPEG-TS: no index, so chunk jobs read it from their host's one download.
    const ts = path.join(root, 'e.ts');
    await run('ffmpeg', ['-v', 'error', '-i', clip, '-c', 'copy', '-f', 'mpegts', ts]);
    tsFrames = await decodedFrames(ts);
    await Promise.all([
      s3.putFile(inBucket, 'e.ts', ts),
      ...['a', 'b'].map((n) => s3.putFile(inBucket, `${n}.mp4`, clip)),
      ...['c', 'd'].map((n) => s3.putFile(inBucket, `${n}.mp4`, small)),
    ]);
    env = {
      ...s3.env({ INPUT_S3_BUCKET: inBucket, OUTPUT_S3_BUCKET: outBucket }),
      QUEUE: 'redis',
      REDIS_URL: redis.url,
      QUEUE_PREFIX: `dvc-${randomUUID().slice(0, 8)}`,
      // Short locks: a killed worker's chunk is found stalled within seconds.
      LEASE_SECONDS: '3',
      TASK_MAX_ATTEMPTS: '3',
      WORKER_CONCURRENCY: '1',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      X264_PRESET: 'ultrafast',
      LADDER: '360:400k,720:1500k',
      SEGMENT_DURATION: '2',
      THUMBNAILS: 'false',
    };
    const api = await start('api', ['serve', '--no-worker']);
    apiUrl = api.address!;
    for (const name of ['worker-a', 'worker-b']) workers.push((await start(name, ['worker'])).proc);
  });

  after(async () => {
    await Promise.allSettled(processes.map((p) => p.stop(10_000)));
    await Promise.allSettled([redis?.stop(), s3?.stop()]);
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('a split task runs on both workers; its package has the unsplit timeline and every frame', async () => {
    const plan = await postJson(`${apiUrl}/plan`, { video_filename: 'a.mp4', chunk_seconds: 4 });
    assert.equal((plan.body.split as { chunks: number }).chunks, 4, JSON.stringify(plan.body.split));
    const id = await submit(apiUrl, 'a.mp4', { chunk_seconds: 4, output_prefix: 'split' });
    let chunks: { total: number; done: number } | undefined;
    await waitUntil(async () => {
      const { body } = await getJson(`${apiUrl}/status/${id}`);
      chunks = (body.chunks as typeof chunks) ?? chunks;
      return body.status === 'completed' || body.status === 'failed';
    }, 180_000);
    const { doc } = await waitForFinal(apiUrl, id);
    assert.equal(doc.status, 'completed', `${doc.error_code}: ${doc.error}`);
    assert.equal(chunks?.total, 5, 'four video chunks and the audio');
    const [a, b] = workers.map((w) => stepsOf(w, id, 'step completed'));
    assert.ok(a!.length > 0 && b!.length > 0, `both workers ran chunks (a: ${a}, b: ${b})`);
    assert.deepEqual([...a!, ...b!].sort(), ['audio', 'chunk-0', 'chunk-1', 'chunk-2', 'chunk-3']);

    const whole = await waitForFinal(apiUrl, await submit(apiUrl, 'b.mp4', { chunk_seconds: 0 }), 180_000);
    assert.equal(whole.doc.status, 'completed', whole.doc.error ?? '');

    const dir = path.join(root, 'split-package');
    await s3.downloadPrefix(outBucket, 'split/', dir);
    const mpd = await checkDashPackage(dir, { heights: [360, 720], audio: true, segmentDuration: 2 });
    const wholeDir = path.join(root, 'whole-package');
    await s3.downloadPrefix(outBucket, 'b/', wholeDir);
    const wholeMpd = parseMpd(await readFile(path.join(wholeDir, 'manifest.mpd'), 'utf8'));
    assert.deepEqual(videoTimeline(mpd), videoTimeline(wholeMpd), 'the same segment timeline');
    for (const rep of mpd.representations.filter((r) => r.contentType === 'video')) {
      const joined = await joinRepresentation(dir, rep, root);
      assert.equal(await decodedFrames(joined), sourceFrames, `${rep.id}: every source frame, once`);
    }
    // The chunk outputs in S3 are gone with the task.
    await waitUntil(async () => (await s3.listObjects(outBucket, '.dvc-chunks/')).length === 0, 10_000);
  });

  test('an MPEG-TS input is split too: each worker downloads it once for all the chunks it runs', async () => {
    const id = await submit(apiUrl, 'e.ts', { chunk_seconds: 4, output_prefix: 'split-ts' });
    const { doc } = await waitForFinal(apiUrl, id, 180_000);
    assert.equal(doc.status, 'completed', `${doc.error_code}: ${doc.error}`);
    const downloads = workers.map(
      (w) =>
        w.lines.filter((l) => l.taskId === id && l.msg === 'input downloaded for the chunk jobs of this host')
          .length,
    );
    const steps = workers.map((w) => stepsOf(w, id, 'step completed'));
    assert.deepEqual(steps.flat().sort(), ['audio', 'chunk-0', 'chunk-1', 'chunk-2', 'chunk-3']);
    // Worker processes with their own work directories stand for two hosts.
    workers.forEach((_, i) =>
      assert.equal(downloads[i], steps[i]!.length ? 1 : 0, `worker ${i}: ${steps[i]} from one download`),
    );
    const dir = path.join(root, 'split-ts-package');
    await s3.downloadPrefix(outBucket, 'split-ts/', dir);
    const mpd = await checkDashPackage(dir, { heights: [360, 720], audio: true, segmentDuration: 2 });
    for (const rep of mpd.representations.filter((r) => r.contentType === 'video')) {
      const joined = await joinRepresentation(dir, rep, root);
      assert.equal(await decodedFrames(joined), tsFrames, `${rep.id}: every source frame, once`);
    }
  });

  test('a worker SIGKILLed while it encodes a chunk costs no task: the chunk runs again', async () => {
    const id = await submit(apiUrl, 'c.mp4', { chunk_seconds: 4 });
    let victim: ServiceProcess | undefined;
    await waitUntil(() => {
      victim = workers.find((w) => stepsOf(w, id, 'step started').some((s) => s.startsWith('chunk-')));
      return !!victim;
    });
    const killedStep = stepsOf(victim!, id, 'step started').find((s) => s.startsWith('chunk-'))!;
    await victim!.kill();
    workers.splice(workers.indexOf(victim!), 1);
    const { doc } = await waitForFinal(apiUrl, id, 180_000);
    assert.equal(doc.status, 'completed', `${doc.error_code}: ${doc.error}`);
    assert.ok(
      stepsOf(workers[0]!, id, 'step completed').includes(killedStep),
      `the surviving worker ran ${killedStep} again`,
    );
    workers.push((await start('worker-c', ['worker'])).proc);
  });

  test('cancel stops every chunk; a chunk that fails for good fails the task with its reason', async () => {
    const id = await submit(apiUrl, 'c.mp4', { chunk_seconds: 4, output_prefix: 'cancelled' });
    await waitUntil(() => workers.some((w) => stepsOf(w, id, 'step started').length > 0));
    const res = await postJson(`${apiUrl}/tasks/${id}/cancel`, {});
    assert.equal(res.status, 200);
    const { doc } = await waitForFinal(apiUrl, id, 30_000);
    assert.deepEqual([doc.status, doc.error_code, doc.cancelled], ['failed', 'cancelled', true]);
    // No chunk of it completes after the cancel, and nothing was published.
    await new Promise((r) => setTimeout(r, 1500));
    const running = workers.flatMap((w) => stepsOf(w, id, 'step started'));
    const completed = workers.flatMap((w) => stepsOf(w, id, 'step completed'));
    assert.ok(
      completed.length < 5,
      `not every chunk ran (${running.length} started, ${completed.length} done)`,
    );
    assert.deepEqual(await s3.listObjects(outBucket, 'cancelled/'), []);

    // The input goes once the task is split: the chunks not yet begun cannot read it.
    const failing = await submit(apiUrl, 'd.mp4', { chunk_seconds: 4 });
    await waitUntil(async () => !!(await getJson(`${apiUrl}/status/${failing}`)).body.chunks, 60_000);
    await s3.client.send(new DeleteObjectCommand({ Bucket: inBucket, Key: 'd.mp4' }));
    const failed = await waitForFinal(apiUrl, failing, 120_000);
    // A chunk not yet begun finds no input; one running reads its URL and gets a 404 (retried as a store's
    // error, then finding no input): either is the reason.
    assert.equal(failed.doc.status, 'failed');
    assert.ok(
      (failed.doc.error_code === 'input_not_found' && failed.doc.error === 'input not found') ||
        (['encode_failed', 'storage_error'].includes(failed.doc.error_code ?? '') &&
          /404/.test(failed.doc.error ?? '')),
      `${failed.doc.error_code}: ${failed.doc.error}`,
    );
    assert.doesNotMatch(failed.doc.error ?? '', /Signature|Credential/, 'no presigned URL in the reason');
  });
});
