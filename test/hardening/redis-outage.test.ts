import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProcess, type ServiceProcess } from '../distributed/processes.js';
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

/** The files a package's top-level manifests point at, as paths below `dir`. */
function referencedFiles(dir: string): string[] {
  const refs: string[] = [];
  const read = (file: string) => {
    try {
      return readFileSync(path.join(dir, file), 'utf8');
    } catch {
      return '';
    }
  };
  for (const m of read('manifest.mpd').matchAll(/initialization="([^"]+)"/g)) refs.push(m[1]!);
  const master = read('master.m3u8');
  for (const line of master.split('\n')) if (line && !line.startsWith('#')) refs.push(line.trim());
  for (const m of master.matchAll(/URI="([^"]+)"/g)) refs.push(m[1]!);
  return refs;
}

/**
 * Redis away for longer than the lease while a task encodes (issue 26, item 2): the worker finishes and
 * publishes meanwhile but cannot record it; once Redis is back, the task's next run adopts that package. One
 * completion, one callback, and the published manifests never point at a missing file.
 */
describe('a Redis outage longer than the lease, mid-encode (AOF)', () => {
  let redis: RedisServer;
  let root: string;
  let api: TestService;
  let worker: ServiceProcess;
  let receiver: Server;
  const callbacks: StatusDoc[] = [];

  before(async () => {
    redis = await startRedisServer({ persistence: 'aof' });
    root = await mkdtemp(path.join(tmpdir(), 'dvc-redis-outage-'));
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        callbacks.push(JSON.parse(body) as StatusDoc);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const env = {
      QUEUE: 'redis',
      REDIS_URL: redis.url,
      QUEUE_PREFIX: `dvc-outage-${randomUUID().slice(0, 8)}`,
      LEASE_SECONDS: '2',
      TASK_MAX_ATTEMPTS: '3',
      // Several seconds of encoding to stop Redis in.
      LADDER: '360:800k',
      X264_PRESET: 'veryslow',
      CALLBACK_URL: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/done`,
      CALLBACK_ALLOW_PRIVATE: 'true',
    };
    api = await startTestService(env, { worker: false, root, keepRoot: true });
    worker = startProcess('worker', ['worker'], {
      ...env,
      INPUT_DIR: api.inputDir,
      OUTPUT_DIR: api.outputDir,
      STATE_DIR: api.stateDir,
      LOG_LEVEL: 'info',
    });
    await worker.waitFor((l) => l.msg === 'dash-video-converter started', 60_000);
  });
  after(async () => {
    await worker?.stop();
    await api?.close();
    await new Promise((r) => receiver?.close(r));
    await redis?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('the package published during the outage is adopted: one completion, one callback, no missing file', async () => {
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 10, audio: true }),
      path.join(api.inputDir, 'outage.mp4'),
    );
    const pkgDir = path.join(api.outputDir, 'outage');
    const missing = new Set<string>();
    const watch = setInterval(() => {
      for (const ref of referencedFiles(pkgDir)) if (!existsSync(path.join(pkgDir, ref))) missing.add(ref);
    }, 20);
    try {
      const id = await submit(api.url, 'outage.mp4');
      for (let i = 0; i < 1200; i++) {
        const { body } = await getJson(`${api.url}/status/${id}`);
        if (body.stage === 'encode') break;
        assert.notEqual(body.status, 'completed', 'the encode was too quick to stop Redis in');
        await new Promise((r) => setTimeout(r, 50));
      }
      const down = Date.now();
      await redis.halt();
      // The run ends and publishes while Redis is away.
      await worker.waitFor((l) => l.msg === 'task completed' && l.taskId === id, 180_000);
      const left = 6_000 - (Date.now() - down);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
      await redis.restart();

      const { doc } = await waitForFinal(api.url, id, 120_000);
      assert.equal(doc.status, 'completed', doc.error ?? '');
      assert.ok(
        worker.lines.some((l) => l.msg === 'adopted the package an earlier run published' && l.taskId === id),
        'the second run adopted the first run’s package',
      );
      assert.match(doc.output?.media_prefix ?? '', new RegExp(`/${id}-1-[0-9a-f]{6}$`));
      for (let i = 0; i < 100 && callbacks.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 2000));
      assert.deepEqual(
        callbacks.map((c) => [c.task_id, c.status]),
        [[id, 'completed']],
      );
      assert.equal(worker.tasks('task completed').filter((t) => t === id).length, 1, 'encoded once');
      const files = (await readdir(pkgDir)).map((f) => f.replace(/-[0-9a-f]{6}$/, '-…')).sort();
      assert.deepEqual(files, [`${id}-1-…`, 'manifest.mpd', 'master.m3u8', 'poster.jpg', 'thumbnails.vtt']);
      assert.deepEqual([...missing], [], 'the published manifests never pointed at a missing file');
    } finally {
      clearInterval(watch);
    }
  });
});
