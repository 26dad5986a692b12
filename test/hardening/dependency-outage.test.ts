import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProcess, type ServiceProcess } from '../distributed/processes.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { getJson, startTestService, type TestService } from '../helpers/service.js';

/**
 * What the service does while something it depends on is away: it says so quickly (503 with the reason,
 * never a 500 after seconds, never a probe that hangs) and still stops when told to.
 */
describe('dependencies that are away', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-outage-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('an S3 endpoint that accepts connections and never answers: /readyz says so within seconds', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    let svc: TestService | undefined;
    try {
      svc = await startTestService(
        {
          STORAGE: 's3',
          S3_ENDPOINT: `http://127.0.0.1:${port}`,
          S3_FORCE_PATH_STYLE: 'true',
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test-secret',
          INPUT_S3_BUCKET: 'uploads',
          OUTPUT_S3_BUCKET: 'streams',
        },
        { worker: false },
      );
      const url = svc.url;
      // Two probes at once: both answered, by one check of each store.
      const [first, second] = await Promise.all([1, 2].map(() => getJson(`${url}/readyz`, {}, 20_000)));
      for (const ready of [first!, second!]) {
        assert.equal(ready.status, 503);
        const checks = ready.body.checks as Record<string, string>;
        assert.equal(checks.input_storage, 'no answer within 3 s');
        assert.equal(checks.output_storage, 'no answer within 3 s');
        assert.equal(checks.queue, 'ok');
      }
    } finally {
      await svc?.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('a file where the output directory should be: output storage not ready', async () => {
    const svc = await startTestService({}, { worker: false });
    try {
      await rm(svc.outputDir, { recursive: true });
      await writeFile(svc.outputDir, 'not a directory');
      const ready = await getJson(`${svc.url}/readyz`, {}, 8_000);
      assert.equal(ready.status, 503);
      assert.match((ready.body.checks as Record<string, string>).output_storage!, /is not a directory/);
    } finally {
      await svc.close();
    }
  });

  describe('Redis stops under a running API and worker (QUEUE=redis)', () => {
    let redis: RedisServer;
    let serve: ServiceProcess;
    let url: string;
    before(async () => {
      redis = await startRedisServer();
      const dir = path.join(root, 'redis-serve');
      await mkdir(dir, { recursive: true });
      serve = startProcess('serve', ['serve'], {
        HOST: '127.0.0.1',
        PORT: '0',
        QUEUE: 'redis',
        REDIS_URL: redis.url,
        QUEUE_PREFIX: `dvc-${randomUUID().slice(0, 8)}`,
        INPUT_DIR: path.join(dir, 'input'),
        OUTPUT_DIR: path.join(dir, 'output'),
        STATE_DIR: path.join(dir, 'state'),
        SHUTDOWN_GRACE_SECONDS: '1',
        LOG_LEVEL: 'info',
      });
      const started = await serve.waitFor((l) => l.msg === 'dash-video-converter started', 60_000);
      url = started.address as string;
      await redis.stop();
    });
    after(async () => {
      await serve.stop(2_000);
      await redis.stop();
    });

    test('requests that need the queue: 503 not_ready with Retry-After, not a 500', async () => {
      const encode = await fetch(`${url}/encode`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ video_filename: 'a.mp4' }),
        signal: AbortSignal.timeout(8_000),
      });
      assert.equal(encode.status, 503);
      assert.equal(encode.headers.get('retry-after'), '5');
      assert.equal(((await encode.json()) as { error: string }).error, 'not_ready');
      const list = await getJson(`${url}/tasks`, {}, 8_000);
      assert.equal(list.status, 503);
      assert.equal(list.body.error, 'not_ready');
      const ready = await getJson(`${url}/readyz`, {}, 8_000);
      assert.equal(ready.status, 503);
      assert.notEqual((ready.body.checks as Record<string, string>).queue, 'ok');
      const internal = serve.lines.filter((l) => l.level >= 50 && l.msg === 'request failed');
      assert.deepEqual(internal, [], 'no request logged as an internal error');
    });

    test('SIGTERM stops the process, though the running tasks cannot be handed back', async () => {
      serve.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        serve.exited,
        new Promise<string>(
          (resolve) => (timer = setTimeout(() => resolve('still running after 45 s'), 45_000)),
        ),
      ]);
      clearTimeout(timer);
      assert.notEqual(code, 'still running after 45 s');
    });
  });
});
