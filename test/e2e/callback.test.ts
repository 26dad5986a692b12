import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';

/** A real HTTP receiver on loopback that fails the first `failures` deliveries of each task. */
async function startReceiver(failures: number) {
  const received: { body: Record<string, unknown>; headers: http.IncomingHttpHeaders }[] = [];
  const attempts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(data) as Record<string, unknown>;
      const n = (attempts.get(String(body.task_id)) ?? 0) + 1;
      attempts.set(String(body.task_id), n);
      if (n <= failures) {
        res.writeHead(500).end('not yet');
        return;
      }
      received.push({ body, headers: req.headers });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, received, attempts, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function waitFor<T>(fn: () => T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls the status document until its `callback.status` is the one expected. */
async function waitForCallbackState(baseUrl: string, id: string, status: string) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const doc = (await (await fetch(`${baseUrl}/status/${id}`)).json()) as {
      callback: { status: string; attempts: number; next_attempt_at?: string } | null;
    };
    if (doc.callback?.status === status) return doc.callback;
    if (Date.now() > deadline)
      assert.fail(`callback state ${JSON.stringify(doc.callback)}, expected ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('completion callbacks', () => {
  let svc: TestService;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  before(async () => {
    receiver = await startReceiver(2);
    svc = await startTestService({
      CALLBACK_URL: receiver.url,
      CALLBACK_ALLOW_PRIVATE: 'true',
      CALLBACK_BACKOFF_MS: '50',
    });
  });
  after(async () => {
    await svc.close();
    await receiver.close();
  });

  test('CALLBACK_URL receives the final status document, after two failed attempts', async () => {
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 3, audio: true }),
      path.join(svc.inputDir, 'cb.mp4'),
    );
    const id = await submit(svc.url, 'cb.mp4');
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed');
    const got = await waitFor(() => receiver.received.find((r) => r.body.task_id === id));
    assert.equal(got.body.status, 'completed');
    assert.equal((got.body.output as { manifest: { key: string } }).manifest.key, 'cb/manifest.mpd');
    assert.equal(receiver.attempts.get(id), 3);
    assert.ok(got.headers['x-dvc-delivery'], 'delivery id header');
    const state = await waitForCallbackState(svc.url, id, 'delivered');
    assert.equal(state.attempts, 3);
  });

  test('a per-request callback_url is used for a failed task too', async () => {
    const other = await startReceiver(0);
    try {
      const id = await submit(svc.url, 'does-not-exist.mp4', { callback_url: other.url });
      const { doc } = await waitForFinal(svc.url, id);
      assert.equal(doc.status, 'failed');
      const got = await waitFor(() => other.received.find((r) => r.body.task_id === id));
      assert.equal(got.body.status, 'failed');
      assert.equal(got.body.error, 'input not found');
      assert.ok(
        !receiver.received.some((r) => r.body.task_id === id),
        'CALLBACK_URL not used when overridden',
      );
      const state = await waitForCallbackState(svc.url, id, 'delivered');
      assert.equal(state.attempts, 1);
    } finally {
      await other.close();
    }
  });
});

describe('a callback pending when the service stops', () => {
  test('is sent by the next start, with the same delivery id, its attempts counted on', async () => {
    const receiver = await startReceiver(1);
    const root = await mkdtemp(path.join(tmpdir(), 'dvc-callback-resume-'));
    const env = {
      CALLBACK_URL: receiver.url,
      CALLBACK_ALLOW_PRIVATE: 'true',
      // The retry after the first refusal would come long after the stop.
      CALLBACK_BACKOFF_MS: '600000',
    };
    try {
      const first = await startTestService(env, { root, keepRoot: true });
      let id = '';
      try {
        await copyFile(
          await generateClip({ width: 320, height: 180, seconds: 1, audio: true }),
          path.join(first.inputDir, 'late.mp4'),
        );
        id = await submit(first.url, 'late.mp4');
        assert.equal((await waitForFinal(first.url, id)).doc.status, 'completed');
        await waitFor(() => (receiver.attempts.get(id) === 1 ? true : undefined));
        const state = await waitForCallbackState(first.url, id, 'pending');
        assert.equal(state.attempts, 1);
        // The status shows when the retry is due: the backoff (at most 5 min) from now, not that and a timeout.
        const dueIn = Date.parse(String(state.next_attempt_at)) - Date.now();
        assert.ok(dueIn > 290_000 && dueIn <= 300_000, `next attempt due in ${dueIn} ms`);
      } finally {
        await first.close();
      }
      const second = await startTestService(env, { root, keepRoot: true });
      try {
        const got = await waitFor(() => receiver.received.find((r) => r.body.task_id === id));
        assert.equal(got.body.status, 'completed');
        assert.equal(
          got.headers['x-dvc-delivery'],
          `${id}.completed`,
          'an id the receiver can drop a duplicate by',
        );
        const state = await waitForCallbackState(second.url, id, 'delivered');
        assert.equal(state.attempts, 2, 'the first process’s attempt counts');
      } finally {
        await second.close();
      }
    } finally {
      await receiver.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  test('a live process’s delivery waiting to retry is not taken over by another that starts', async () => {
    const receiver = await startReceiver(1);
    const root = await mkdtemp(path.join(tmpdir(), 'dvc-callback-live-'));
    const env = { CALLBACK_URL: receiver.url, CALLBACK_ALLOW_PRIVATE: 'true', CALLBACK_BACKOFF_MS: '600000' };
    const first = await startTestService(env, { root, keepRoot: true });
    let second: TestService | undefined;
    try {
      await copyFile(
        await generateClip({ width: 320, height: 180, seconds: 1, audio: true }),
        path.join(first.inputDir, 'busy.mp4'),
      );
      const id = await submit(first.url, 'busy.mp4');
      await waitForFinal(first.url, id);
      await waitFor(() => (receiver.attempts.get(id) === 1 ? true : undefined));
      await waitForCallbackState(first.url, id, 'pending');
      // Same database, another worker: it looks for abandoned deliveries as it starts.
      second = await startTestService(env, { root, keepRoot: true });
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(receiver.attempts.get(id), 1, 'no second delivery while the first process waits to retry');
      const state = await waitForCallbackState(second.url, id, 'pending');
      assert.equal(state.attempts, 1);
    } finally {
      await second?.close();
      await first.close();
      await receiver.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
