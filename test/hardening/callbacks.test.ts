import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { copyFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { getJson, startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';
import { poll } from './procs.js';

interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: string;
  path: string;
}

/** A real HTTP receiver on loopback; `answer` picks the status code of each request. */
async function startReceiver(answer: (n: number) => { code: number; headers?: Record<string, string> }) {
  const deliveries: Delivery[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        path: req.url ?? '',
      });
      const { code, headers } = answer(deliveries.length);
      res.writeHead(code, headers).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    deliveries,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** What a receiver does: recompute the HMAC over `timestamp.body` and compare in constant time. */
function verifySignature(secret: string, d: Delivery): boolean {
  const timestamp = String(d.headers['x-dvc-timestamp']);
  const given = String(d.headers['x-dvc-signature']);
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${d.body}`).digest('hex')}`;
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

async function callbackState(svc: TestService, id: string, until: string) {
  return poll(async () => {
    const doc = (await getJson(`${svc.url}/status/${id}`)).body;
    const cb = doc.callback as { status: string; attempts: number; last_error?: string; url: string } | null;
    return cb?.status === until ? cb : undefined;
  }, 15_000);
}

describe('callbacks', () => {
  const secret = 'cb-secret-4f1d9a7e';
  let clip: string;
  const cleanups: (() => Promise<void>)[] = [];
  before(async () => {
    clip = await generateClip({ width: 320, height: 180, seconds: 1, audio: true });
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('deliveries are signed (HMAC-SHA256 over timestamp.body), carry an id kept across retries', async () => {
    // The first attempt gets a 500: the retry must carry the same delivery id and a valid signature.
    const receiver = await startReceiver((n) => ({ code: n === 1 ? 500 : 204 }));
    cleanups.push(receiver.close);
    const svc = await startTestService({
      CALLBACK_ALLOW_PRIVATE: 'true',
      CALLBACK_SECRET: secret,
      CALLBACK_BACKOFF_MS: '50',
    });
    cleanups.push(svc.close);
    await copyFile(clip, path.join(svc.inputDir, 'signed.mp4'));
    const id = await submit(svc.url, 'signed.mp4', {
      callback_url: `http://127.0.0.1:${receiver.port}/hook?token=abc`,
    });
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    const cb = await callbackState(svc, id, 'delivered');
    assert.equal(cb?.attempts, 2);
    assert.equal(cb?.url, `http://127.0.0.1:${receiver.port}/…`, 'path and query (often a token) are hidden');

    assert.equal(receiver.deliveries.length, 2);
    const [first, second] = receiver.deliveries as [Delivery, Delivery];
    for (const d of [first, second]) {
      assert.ok(verifySignature(secret, d), 'the signature verifies with the shared secret');
      assert.ok(!verifySignature('another secret', d), 'and not with another');
      assert.ok(Math.abs(Number(d.headers['x-dvc-timestamp']) - Date.now() / 1000) < 300, 'fresh timestamp');
      assert.equal(d.headers['content-type'], 'application/json');
      assert.equal(d.path, '/hook?token=abc');
      const body = JSON.parse(d.body) as { task_id: string; status: string };
      assert.equal(body.task_id, id);
      assert.equal(body.status, 'completed');
    }
    assert.equal(first.headers['x-dvc-delivery'], `${id}.completed`);
    assert.equal(second.headers['x-dvc-delivery'], first.headers['x-dvc-delivery'], 'same id on a retry');

    // A tampered body no longer verifies.
    assert.ok(!verifySignature(secret, { ...first, body: first.body.replace('completed', 'failed') }));
  });

  test('by default a callback to a private target is refused: nothing is sent, the status shows why', async () => {
    const receiver = await startReceiver(() => ({ code: 204 }));
    cleanups.push(receiver.close);
    // A CALLBACK_URL naming a private address is refused at start-up (config.test.ts); one naming a host is
    // checked where it resolves: the delivery must refuse it.
    const svc = await startTestService({
      CALLBACK_URL: `http://localhost:${receiver.port}/default`,
      CALLBACK_BACKOFF_MS: '50',
    });
    cleanups.push(svc.close);

    const byDefault = await submit(svc.url, 'missing-1.mp4');
    await waitForFinal(svc.url, byDefault);
    const refusedDefault = await callbackState(svc, byDefault, 'failed');
    assert.match(
      String(refusedDefault?.last_error),
      /callback host localhost resolves to a private or loopback/,
    );
    assert.equal(refusedDefault?.attempts, 1, 'a refused target is not retried');

    const byName = await submit(svc.url, 'missing-2.mp4', {
      callback_url: `http://localhost:${receiver.port}/by-name`,
    });
    await waitForFinal(svc.url, byName);
    const refusedName = await callbackState(svc, byName, 'failed');
    assert.match(
      String(refusedName?.last_error),
      /callback host localhost resolves to a private or loopback/,
    );

    const atSubmit = await fetch(`${svc.url}/encode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        video_filename: 'x.mp4',
        callback_url: `http://[::1]:${receiver.port}/`,
      }),
    });
    assert.equal(atSubmit.status, 400);
    assert.deepEqual(receiver.deliveries, [], 'the receiver never got a request');
  });

  test('a receiver that trickles its answer is given up on after CALLBACK_TIMEOUT_MS, and retried', async () => {
    let requests = 0;
    const timers = new Set<NodeJS.Timeout>();
    const trickler = http.createServer((req, res) => {
      requests++;
      req.resume();
      // The status line a byte a quarter second: the socket is never silent long enough for an idle timeout.
      const socket = res.socket!;
      const bytes = Buffer.from('HTTP/1.1 200 OK\r\n' + ' '.repeat(200));
      let i = 0;
      const timer = setInterval(() => {
        if (i < bytes.length && !socket.destroyed) socket.write(bytes.subarray(i, ++i));
      }, 250);
      timers.add(timer);
      socket.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((r) => trickler.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const t of timers) clearInterval(t);
      trickler.closeAllConnections();
      await new Promise<void>((r) => trickler.close(() => r()));
    });
    const svc = await startTestService({
      CALLBACK_ALLOW_PRIVATE: 'true',
      CALLBACK_MAX_ATTEMPTS: '2',
      CALLBACK_BACKOFF_MS: '50',
      CALLBACK_TIMEOUT_MS: '1000',
    });
    cleanups.push(svc.close);
    const port = (trickler.address() as AddressInfo).port;
    const id = await submit(svc.url, 'missing.mp4', { callback_url: `http://127.0.0.1:${port}/hook` });
    await waitForFinal(svc.url, id);
    const cb = await callbackState(svc, id, 'failed');
    assert.equal(cb?.last_error, 'no answer within 1000 ms');
    assert.equal(requests, 2, 'each attempt gave up on its own deadline');
  });

  test('redirects are not followed', async () => {
    const target = await startReceiver(() => ({ code: 204 }));
    cleanups.push(target.close);
    const redirector = await startReceiver(() => ({
      code: 307,
      headers: { location: `http://127.0.0.1:${target.port}/elsewhere` },
    }));
    cleanups.push(redirector.close);
    const svc = await startTestService({
      CALLBACK_ALLOW_PRIVATE: 'true',
      CALLBACK_MAX_ATTEMPTS: '2',
      CALLBACK_BACKOFF_MS: '50',
    });
    cleanups.push(svc.close);
    const id = await submit(svc.url, 'missing.mp4', {
      callback_url: `http://127.0.0.1:${redirector.port}/hook`,
    });
    await waitForFinal(svc.url, id);
    const cb = await callbackState(svc, id, 'failed');
    assert.equal(
      cb?.last_error,
      `receiver answered HTTP 307 (a redirect to http://127.0.0.1:${target.port}/…, not followed)`,
      'where it pointed, by origin only',
    );
    assert.equal(cb?.attempts, 2, 'a temporary redirect is retried with backoff up to CALLBACK_MAX_ATTEMPTS');
    assert.equal(redirector.deliveries.length, 2);
    assert.deepEqual(target.deliveries, [], 'the redirect target got nothing');
  });

  test('a permanent redirect or 410 Gone ends the delivery at once: no retry can change it', async () => {
    const answers = [
      { code: 308, headers: { location: 'https://hooks.example.com/new?token=s3cr3t' } },
      { code: 410 },
      { code: 404 },
    ];
    const receivers = await Promise.all(answers.map((a) => startReceiver(() => a)));
    for (const r of receivers) cleanups.push(r.close);
    const svc = await startTestService({
      CALLBACK_ALLOW_PRIVATE: 'true',
      CALLBACK_MAX_ATTEMPTS: '3',
      CALLBACK_BACKOFF_MS: '50',
    });
    cleanups.push(svc.close);
    const ids = [];
    for (const [i, r] of receivers.entries()) {
      ids.push(
        await submit(svc.url, `missing-${i}.mp4`, { callback_url: `http://127.0.0.1:${r.port}/hook` }),
      );
    }
    const [moved, gone, missing] = await Promise.all(
      ids.map(async (id) => {
        await waitForFinal(svc.url, id);
        return callbackState(svc, id, 'failed');
      }),
    );
    assert.equal(
      moved?.last_error,
      'receiver answered HTTP 308 (a redirect to https://hooks.example.com/…, not followed): set the callback URL to where it moved',
    );
    assert.equal(moved?.attempts, 1);
    assert.equal(gone?.last_error, 'receiver answered HTTP 410');
    assert.equal(gone?.attempts, 1);
    assert.equal(missing?.attempts, 3, 'a 404 may be a receiver being deployed: retried');
    assert.deepEqual(
      receivers.map((r) => r.deliveries.length),
      [1, 1, 3],
    );
  });
});
