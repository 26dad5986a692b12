import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/process/logger.js';
import { generateClip } from '../helpers/media.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { poll } from './procs.js';

const secrets = {
  API_KEY: 'api-key-7c1e55b0d2',
  CALLBACK_SECRET: 'callback-secret-93af0e',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-b8d4c6e2f0a1',
};
/** Not configured secrets but as sensitive: a bearer token and a token in a callback URL's query. */
const bearer = 'bearer-token-5a5a5a';
const urlToken = 'url-token-0f0f0f';

describe('secrets stay out of logs, status documents and error bodies', () => {
  let svc: TestService;
  let receiver: http.Server;
  let receiverPort: number;
  const logLines: string[] = [];
  const bodies: string[] = [];
  const auth = { 'x-api-key': secrets.API_KEY };

  async function call(method: string, pathname: string, headers: Record<string, string>, body?: unknown) {
    const res = await fetch(`${svc.url}${pathname}`, {
      method,
      headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, text, json: JSON.parse(text) as Record<string, unknown> };
  }

  before(async () => {
    receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverPort = (receiver.address() as AddressInfo).port;
    svc = await startTestService(
      {
        ...secrets,
        AWS_ACCESS_KEY_ID: 'AKIAHARDENINGTEST',
        CALLBACK_ALLOW_PRIVATE: 'true',
        LOG_LEVEL: 'trace',
      },
      { logDestination: { write: (line: string) => void logLines.push(line) } },
    );
  });
  after(async () => {
    await svc?.close();
    await new Promise<void>((r) => receiver?.close(() => r()));
  });

  test('a missing or wrong API key is a 401 that echoes nothing', async () => {
    const none = await call('POST', '/encode', {}, { video_filename: 'a.mp4' });
    assert.equal(none.status, 401);
    const wrong = await call(
      'POST',
      '/encode',
      { 'x-api-key': `${secrets.API_KEY}x` },
      { video_filename: 'a.mp4' },
    );
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json, none.json);
    assert.ok(!wrong.text.includes(secrets.API_KEY));
  });

  test('tasks run with the key; their status documents hold no secret', async () => {
    await copyFile(
      await generateClip({ width: 320, height: 180, seconds: 1, audio: true }),
      path.join(svc.inputDir, 'clip.mp4'),
    );
    const headers = { ...auth, authorization: `Bearer ${bearer}` };
    const ok = await call('POST', '/encode', headers, {
      video_filename: 'clip.mp4',
      callback_url: `http://127.0.0.1:${receiverPort}/hook?token=${urlToken}`,
    });
    assert.equal(ok.status, 202, ok.text);
    const failing = await call('POST', '/encode', headers, { video_filename: 'missing.mp4' });
    assert.equal(failing.status, 202);
    for (const id of [ok.json.task_id, failing.json.task_id] as string[]) {
      const res = await fetch(`${svc.url}/status/${id}`, { headers: auth });
      bodies.push(await res.text());
    }
    // waitForFinal sends no API key: poll here.
    const done = await poll(async () => {
      const doc = await call('GET', `/status/${String(ok.json.task_id)}`, auth);
      const cb = doc.json.callback as { status?: string } | null;
      return doc.json.status === 'completed' && cb?.status === 'delivered' ? doc : undefined;
    }, 60_000);
    assert.ok(done, 'the task completed and its callback was delivered');
    assert.match(
      done.text,
      /"url":"http:\/\/127\.0\.0\.1:\d+\/…"/,
      'only the callback URL’s origin is shown',
    );
    const failed = await poll(async () => {
      const doc = await call('GET', `/status/${String(failing.json.task_id)}`, auth);
      return doc.json.status === 'failed' ? doc : undefined;
    }, 30_000);
    assert.equal(failed?.json.error, 'input not found');
  });

  test("another deployment's task id reveals nothing, and without the key not even whether it exists", async () => {
    const unknown = await call('GET', '/status/6f1c2d3e-0000-4000-8000-000000000000', auth);
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, { error: 'not_found', message: 'no task with this id' });
    const list = await svc.running.services.queue.list({ limit: 1 });
    const known = list.tasks[0]!.id;
    const knownNoKey = await call('GET', `/status/${known}`, {});
    const unknownNoKey = await call('GET', '/status/6f1c2d3e-0000-4000-8000-000000000000', {});
    assert.equal(knownNoKey.status, 401);
    assert.deepEqual(knownNoKey.json, unknownNoKey.json);
  });

  test('no secret in any captured log line, response body or status document', async () => {
    const logs = logLines.join('');
    assert.match(logs, /task submitted/, 'logs were captured');
    for (const [what, value] of [
      ...Object.entries(secrets),
      ['bearer token', bearer],
      ['URL token', urlToken],
    ]) {
      assert.ok(!logs.includes(value!), `${what} is not in the logs`);
      for (const body of bodies) assert.ok(!body.includes(value!), `${what} is not in a response: ${body}`);
    }
  });

  test('the logger redacts credentials wherever a configuration or request is logged', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (line: string) => void lines.push(line) });
    const config = loadConfig({
      ...secrets,
      STORAGE: 's3',
      INPUT_S3_BUCKET: 'in',
      OUTPUT_S3_BUCKET: 'out',
      AWS_ACCESS_KEY_ID: 'AKIAHARDENINGTEST',
      AWS_SESSION_TOKEN: bearer,
    });
    log.info({ config }, 'nested');
    log.info(config, 'top level');
    log.info({ storage: config.input }, 'one storage');
    log.info(
      { req: { headers: { 'x-api-key': secrets.API_KEY, authorization: `Bearer ${bearer}` } } },
      'req',
    );
    const logs = lines.join('');
    assert.equal(lines.length, 4);
    assert.match(logs, /"bucket":"in"/, 'the rest is logged');
    for (const value of [...Object.values(secrets), bearer]) assert.ok(!logs.includes(value), value);
  });
});
