import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { getJson, startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';

/** Prometheus text → value of each sample, keyed by name and labels as written (`name{a="b"}`). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(url: string) {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return parseMetrics(await res.text());
}

const value = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

describe('Prometheus metrics and readiness', () => {
  let svc: TestService;
  let other: TestService;
  let receiver: http.Server;
  let hookUrl: string;
  before(async () => {
    receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/done`;
    svc = await startTestService({ CALLBACK_ALLOW_PRIVATE: 'true' });
    // A second service in the same process: its registry must not see the first one's tasks.
    other = await startTestService({}, { worker: false });
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 2, audio: true }),
      path.join(svc.inputDir, 'clip.mp4'),
    );
  });
  after(async () => {
    await Promise.all([svc.close(), other.close()]);
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  test('a finished task moves the counters and histograms', async () => {
    const before = await scrape(svc.url);
    assert.ok(before.has('process_cpu_user_seconds_total'), 'default process metrics');
    assert.ok(before.has('nodejs_eventloop_lag_seconds'), 'default Node.js metrics');
    assert.equal(value(before, 'dvc_queue_depth'), 0);
    assert.equal(value(before, 'dvc_tasks_finished_total{status="completed",code="ok"}'), 0);

    const id = await submit(svc.url, 'clip.mp4', { callback_url: hookUrl });
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    const failedId = await submit(svc.url, 'missing.mp4');
    assert.equal((await waitForFinal(svc.url, failedId)).doc.error_code, 'input_not_found');
    const deadline = Date.now() + 10_000;
    let after = await scrape(svc.url);
    while (value(after, 'dvc_callback_deliveries_total{outcome="delivered"}') < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await scrape(svc.url);
    }

    assert.equal(value(after, 'dvc_tasks_submitted_total{outcome="created"}'), 2);
    assert.equal(value(after, 'dvc_tasks_finished_total{status="completed",code="ok"}'), 1);
    assert.equal(value(after, 'dvc_tasks_finished_total{status="failed",code="input_not_found"}'), 1);
    assert.equal(value(after, 'dvc_errors_total{source="task",kind="input_not_found"}'), 1);
    assert.equal(value(after, 'dvc_callback_deliveries_total{outcome="delivered"}'), 1);
    for (const stage of ['fetch', 'probe', 'encode', 'package', 'poster', 'qc', 'publish']) {
      assert.equal(value(after, `dvc_stage_duration_seconds_count{stage="${stage}"}`), 1, stage);
    }
    assert.equal(value(after, 'dvc_encode_speed_ratio_count'), 1);
    assert.ok(value(after, 'dvc_encode_speed_ratio_sum') > 0);
    assert.equal(value(after, 'dvc_worker_active_tasks'), 0);
    assert.equal(value(after, 'dvc_tasks_running'), 0);
    assert.ok(
      value(
        after,
        'dvc_http_request_duration_seconds_count{method="POST",route="/encode",status_code="202"}',
      ) >= 2,
    );
    assert.ok(
      value(
        after,
        'dvc_http_request_duration_seconds_count{method="GET",route="/status/:task_id",status_code="200"}',
      ) >= 1,
      'routes are labelled by pattern, not by URL',
    );

    const elsewhere = await scrape(other.url);
    assert.equal(
      value(elsewhere, 'dvc_tasks_submitted_total{outcome="created"}'),
      0,
      'one registry per service',
    );
  });

  test('queue depth counts waiting tasks, and API errors are counted by status', async () => {
    await submit(other.url, 'waits.mp4');
    await submit(other.url, 'waits-too.mp4');
    await fetch(`${other.url}/status/no-such-task`);
    const m = await scrape(other.url);
    assert.equal(value(m, 'dvc_queue_depth'), 2);
    assert.equal(value(m, 'dvc_errors_total{source="api",kind="404"}'), 1);
  });

  test('open /events streams are counted, and no longer once closed', async () => {
    assert.equal(value(await scrape(other.url), 'dvc_event_streams'), 0);
    const aborts = [new AbortController(), new AbortController()];
    for (const a of aborts) {
      const res = await fetch(`${other.url}/events`, { signal: a.signal });
      assert.equal(res.status, 200);
      // The stream is registered as its snapshot is sent.
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      for (let text = ''; !text.includes('event: snapshot');) {
        const { value: chunk, done } = await reader.read();
        assert.ok(!done, 'the stream sent its snapshot');
        text += chunk;
      }
    }
    assert.equal(value(await scrape(other.url), 'dvc_event_streams'), 2);
    assert.equal(value(await scrape(svc.url), 'dvc_event_streams'), 0, 'per service');
    for (const a of aborts) a.abort();
    const deadline = Date.now() + 5000;
    while (value(await scrape(other.url), 'dvc_event_streams') !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(value(await scrape(other.url), 'dvc_event_streams'), 0);
  });

  test('/readyz checks the tools and the disk space floor', async () => {
    const ready = await getJson(`${svc.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body.checks, {
      queue: 'ok',
      input_storage: 'ok',
      output_storage: 'ok',
      tools: 'ok',
      disk: 'ok',
    });
    const full = await startTestService({ MIN_FREE_DISK_MB: String(1024 ** 3) }, { worker: false });
    try {
      const res = await getJson(`${full.url}/readyz`);
      assert.equal(res.status, 503);
      assert.equal(res.body.status, 'not_ready');
      assert.match(String((res.body.checks as Record<string, string>).disk), /below MIN_FREE_DISK_MB/);
    } finally {
      await full.close();
    }
    // The SQLite queue's disk, when it is not the work directory's (a full one refuses every submit): here
    // STATE_DIR on /dev/shm and WORK_DIR on the temporary directory's disk, the floor between their free spaces.
    const shm = await mkdtemp('/dev/shm/dvc-state-').catch(() => undefined);
    if (shm && (await stat(shm)).dev !== (await stat(tmpdir())).dev) {
      const freeMb = async (dir: string) => {
        const fs = await statfs(dir);
        return (fs.bavail * fs.bsize) / 2 ** 20;
      };
      const [stateFree, workFree] = [await freeMb(shm), await freeMb(tmpdir())];
      const work = await mkdtemp(path.join(tmpdir(), 'dvc-work-'));
      const split = await startTestService(
        {
          STATE_DIR: shm,
          WORK_DIR: path.join(work, 'work'),
          MIN_FREE_DISK_MB: String(Math.round((stateFree + workFree) / 2)),
        },
        { worker: false },
      );
      try {
        const res = await getJson(`${split.url}/readyz`);
        assert.equal(res.status, 503);
        const why = String((res.body.checks as Record<string, string>).disk);
        assert.match(why, stateFree < workFree ? /in the queue's database,/ : /in the work directory,/);
      } finally {
        await split.close();
        await rm(shm, { recursive: true, force: true });
        await rm(work, { recursive: true, force: true });
      }
    }
    const broken = await startTestService({ PACKAGER_PATH: '/nonexistent/packager' }, { worker: false });
    try {
      const res = await getJson(`${broken.url}/readyz`);
      assert.equal(res.status, 503);
      assert.match(String((res.body.checks as Record<string, string>).tools), /packager not usable/);
    } finally {
      await broken.close();
    }
  });
});
