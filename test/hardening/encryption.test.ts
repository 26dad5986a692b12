import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { keySpellings } from '../../src/domain/encryption.js';
import { generateClip } from '../helpers/media.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import {
  getJson,
  postJson,
  startTestService,
  submit,
  waitForFinal,
  type TestService,
} from '../helpers/service.js';
import { poll } from './procs.js';

const hex = () => randomBytes(16).toString('hex');
/** Fresh per run: what the searches below look for cannot be anywhere by chance. */
const videoKey = { key_id: hex(), key: hex() };
const audioKey = { key_id: hex(), key: hex() };

/** Every file below `dir`, as [relative path, bytes]. */
async function filesIn(dir: string): Promise<[string, Buffer][]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  return Promise.all(files.map(async (f) => [path.relative(dir, f), await readFile(f)] as [string, Buffer]));
}

/** Where a key shows in `bytes`, in any spelling (hex either case, base64, base64url, raw bytes). */
function keyTraces(bytes: Buffer, keys: string[]): string[] {
  const found: string[] = [];
  for (const key of keys) {
    for (const spelling of keySpellings(key)) if (bytes.includes(spelling)) found.push(spelling);
    if (bytes.includes(Buffer.from(key, 'hex'))) found.push(`raw bytes of ${key.slice(0, 4)}…`);
  }
  return found;
}

describe('encryption: raw-key cbcs packages, and the keys nowhere but in the packager', () => {
  let svc: TestService;
  let receiver: http.Server;
  let receiverPort: number;
  const logLines: string[] = [];
  const callbackBodies: string[] = [];
  const answers: string[] = [];

  before(async () => {
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        callbackBodies.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverPort = (receiver.address() as AddressInfo).port;
    svc = await startTestService(
      { LOG_LEVEL: 'trace', CALLBACK_ALLOW_PRIVATE: 'true' },
      { logDestination: { write: (line: string) => void logLines.push(line) } },
    );
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 2, audio: true }),
      path.join(svc.inputDir, 'clip.mp4'),
    );
  });
  after(async () => {
    await svc?.close();
    receiver?.closeAllConnections();
    await new Promise<void>((r) => receiver?.close(() => r()));
  });

  test('bad encryption input is a 400 that names the field and never echoes the key', async () => {
    const key = hex();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ key_id: hex(), key: `${key.slice(0, 31)}g` }, /encryption\/key|encryption\.key/],
      [{ key_id: hex(), key: key.slice(0, 30) }, /encryption\/key|encryption\.key/],
      [{ key }, /encryption\.key_id must be given with key/],
      [{ scheme: 'cbc1', key_id: hex(), key }, /encryption\/scheme|encryption\.scheme/],
      [{ key_id: hex(), key, protection_systems: ['marlin'] }, /protection_systems/],
      [{ key_id: hex(), key, protection_systems: ['fairplay'] }, /encryption\.hls_key_uri is required/],
      [{ key_id: hex(), key, hls_key_uri: `data:text/plain;base64,${key}` }, /hls_key_uri must be an skd/],
      [{ key_id: key, key }, /encryption\.key must differ from every key_id/],
      [{ keys: [{ label: 'fhd', key_id: hex(), key }] }, /encryption\/keys\/0\/label|keys\[0\]\.label/],
      [{ scheme: 'cenc', key_id: hex(), key }, /"cenc" cannot be used with HLS/],
      [{ scheme: 'cbcs' }, /no ENCRYPTION_KEYS_FILE/],
    ];
    for (const [encryption, message] of cases) {
      const res = await postJson(`${svc.url}/encode`, { video_filename: 'clip.mp4', encryption });
      assert.equal(res.status, 400, JSON.stringify(encryption));
      assert.match(String(res.body.message), message);
      const text = JSON.stringify(res.body);
      assert.ok(!text.includes(key) && !text.includes(key.slice(0, 30)), `no key in ${text}`);
    }
    // cenc is fine for DASH alone.
    const dashOnly = await postJson(`${svc.url}/encode?dry_run=true`, {
      video_filename: 'clip.mp4',
      formats: ['dash'],
      encryption: { scheme: 'cenc', key_id: hex(), key },
    });
    assert.equal(dashOnly.status, 200, JSON.stringify(dashOnly.body));
    assert.ok(!JSON.stringify(dashOnly.body).includes(key), 'the plan holds no key');
  });

  test('an encrypted package: encv and enca, default_KID per label, keys only where they belong', async () => {
    const body = {
      video_filename: 'clip.mp4',
      callback_url: `http://127.0.0.1:${receiverPort}/hook`,
      encryption: { ...videoKey, keys: [{ label: 'audio', ...audioKey }], protection_systems: ['widevine'] },
    };
    const idem = { 'idempotency-key': `enc-${hex()}` };
    const submitted = await postJson(`${svc.url}/encode`, body, idem);
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    answers.push(JSON.stringify(submitted.body));
    const id = submitted.body.task_id as string;
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    const full = await getJson(`${svc.url}/status/${id}`);
    const status = full.body as {
      options: { encryption: unknown };
      output: { encryption: unknown; prefix: string };
    };
    assert.deepEqual(status.output.encryption, {
      scheme: 'cbcs',
      key_ids: [
        { label: 'default', key_id: videoKey.key_id },
        { label: 'audio', key_id: audioKey.key_id },
      ],
      protection_systems: ['widevine'],
    });
    assert.deepEqual(status.options.encryption, {
      key_id: videoKey.key_id,
      keys: [{ label: 'audio', key_id: audioKey.key_id }],
      protection_systems: ['widevine'],
    });

    // The MPD signals each stream's own key ID and a Widevine PSSH; the init segments are encrypted entries.
    const pkgDir = path.join(svc.outputDir, status.output.prefix);
    const mpd = await readFile(path.join(pkgDir, 'manifest.mpd'), 'utf8');
    const kid = (h: string) =>
      `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    assert.match(mpd, new RegExp(`value="cbcs"[^>]*cenc:default_KID="${kid(videoKey.key_id)}"`));
    assert.match(mpd, new RegExp(`cenc:default_KID="${kid(audioKey.key_id)}"`));
    assert.match(mpd, /urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed/);
    const files = await filesIn(pkgDir);
    const init = (dir: string) => files.find(([f]) => f.endsWith(`${dir}/init.mp4`))![1];
    assert.ok(init('video_360p').includes('encv'), 'the video sample entry is encv');
    assert.ok(init('audio').includes('enca'), 'the audio sample entry is enca');
    const master = files.find(([f]) => f === 'master.m3u8');
    assert.ok(master, 'an HLS package too');
    const playlists = files.filter(([f]) => f.endsWith('playlist.m3u8')).map(([, b]) => b.toString());
    for (const p of playlists) assert.match(p, /#EXT-X-KEY:METHOD=SAMPLE-AES/);

    // Resubmitting compares a hash: the same key gives the same task, another key a conflict.
    const again = await postJson(`${svc.url}/encode`, body, idem);
    assert.equal(again.body.task_id, id);
    const other = await postJson(
      `${svc.url}/encode`,
      { ...body, encryption: { ...body.encryption, key: hex() } },
      idem,
    );
    assert.equal(other.status, 409);
    answers.push(JSON.stringify(again.body), JSON.stringify(other.body));

    // Every public answer about the task.
    answers.push(JSON.stringify(full.body));
    answers.push(JSON.stringify((await getJson(`${svc.url}/tasks?limit=100`)).body));
    answers.push(await (await fetch(`${svc.url}/metrics`)).text());
    // The snapshot of /events, on a socket of its own that is then destroyed (an open stream holds the close).
    answers.push(
      await new Promise<string>((resolve, reject) => {
        const req = http.get(`${svc.url}/events`, { agent: false }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => {
            text += chunk.toString();
            if (text.includes(id)) {
              req.destroy();
              resolve(text);
            }
          });
        });
        req.on('error', reject);
      }),
    );
    await poll(async () => (callbackBodies.length > 0 ? true : undefined), 20_000);

    const keys = [videoKey.key, audioKey.key];
    for (const [file, bytes] of files) assert.deepEqual(keyTraces(bytes, keys), [], `no key in ${file}`);
    for (const text of [...answers, ...callbackBodies]) {
      assert.deepEqual(keyTraces(Buffer.from(text), keys), [], `no key in ${text.slice(0, 200)}`);
    }
    const logs = logLines.join('');
    assert.match(logs, /"level":20/, 'debug lines were captured');
    assert.match(logs, /--flagfile/, 'the packager command line was logged (with the key file, not the key)');
    assert.deepEqual(keyTraces(Buffer.from(logs), keys), [], 'no key in the logs');

    // The task's record: the key IDs stay, the keys are erased, in every file of the database.
    const stateFiles = await filesIn(svc.stateDir);
    assert.ok(
      stateFiles.some(([f]) => f.endsWith('.db') || f.endsWith('.sqlite')),
      'the database is there',
    );
    for (const [file, bytes] of stateFiles) {
      assert.deepEqual(keyTraces(bytes, keys), [], `no key in ${file}`);
    }
    const dbFile = stateFiles.find(([f]) => !f.endsWith('-wal') && !f.endsWith('-shm'))![0];
    const db = new Database(path.join(svc.stateDir, dbFile), { readonly: true });
    const row = db.prepare('SELECT request FROM tasks WHERE id = ?').get(id) as { request: string };
    db.close();
    assert.ok(row.request.includes(videoKey.key_id) && row.request.includes(audioKey.key_id));
    assert.ok(!row.request.includes('"key"'), row.request);
  });
});

/** Every value of every key in a Redis database, as one text to search. */
async function redisContents(url: string): Promise<string> {
  const redis = new Redis(url);
  try {
    const parts: string[] = [];
    for (const k of await redis.keys('*')) {
      const type = await redis.type(k);
      const value =
        type === 'string'
          ? await redis.get(k)
          : type === 'hash'
            ? await redis.hgetall(k)
            : type === 'list'
              ? await redis.lrange(k, 0, -1)
              : type === 'set'
                ? await redis.smembers(k)
                : type === 'zset'
                  ? await redis.zrange(k, '0', '-1')
                  : type === 'stream'
                    ? await redis.xrange(k, '-', '+')
                    : null;
      parts.push(k, JSON.stringify(value));
    }
    return parts.join('\n');
  } finally {
    redis.disconnect();
  }
}

describe('encryption: cenc for DASH alone', () => {
  test('a cenc package signals cenc, and no HLS is written', async () => {
    const svc = await startTestService();
    try {
      await copyFile(
        await generateClip({ width: 320, height: 180, seconds: 1, audio: true }),
        path.join(svc.inputDir, 'clip.mp4'),
      );
      const k = { key_id: hex(), key: hex() };
      const id = await submit(svc.url, 'clip.mp4', {
        formats: ['dash'],
        encryption: { scheme: 'cenc', ...k },
      });
      const { doc } = await waitForFinal(svc.url, id);
      assert.equal(doc.status, 'completed', doc.error ?? '');
      const files = await filesIn(path.join(svc.outputDir, doc.output!.prefix));
      const mpd = files.find(([f]) => f === 'manifest.mpd')![1].toString();
      assert.match(mpd, /value="cenc"/);
      assert.ok(!files.some(([f]) => f.endsWith('.m3u8')));
      for (const [file, bytes] of files) assert.deepEqual(keyTraces(bytes, [k.key]), [], `no key in ${file}`);
    } finally {
      await svc.close();
    }
  });
});

describe('encryption on BullMQ: an ended task leaves no key in Redis', () => {
  let redis: RedisServer;
  const services: TestService[] = [];
  after(async () => {
    for (const s of services) await s.close();
    await redis?.stop();
  });

  test('a completed and a cancelled task: key IDs kept, keys erased', async () => {
    redis = await startRedisServer();
    const root = await mkdtemp(path.join(tmpdir(), 'dvc-enc-redis-'));
    const env = { QUEUE: 'redis', REDIS_URL: redis.url, QUEUE_PREFIX: `dvc-enc-${hex().slice(0, 8)}` };
    const api = await startTestService(env, { worker: false, root, keepRoot: true });
    services.push(api);
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 2, audio: true }),
      path.join(api.inputDir, 'clip.mp4'),
    );
    const cancelled = { key_id: hex(), key: hex() };
    const completed = { key_id: hex(), key: hex() };
    const queuedId = await submit(api.url, 'clip.mp4', { encryption: cancelled });
    assert.ok((await redisContents(redis.url)).includes(cancelled.key), 'the queued task holds its key');
    const cancel = await postJson(`${api.url}/tasks/${queuedId}/cancel`, {});
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));

    services.push(await startTestService(env, { api: false, root }));
    const id = await submit(api.url, 'clip.mp4', { encryption: completed });
    const { doc } = await waitForFinal(api.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    const contents = await poll(async () => {
      const text = await redisContents(redis.url);
      return text.includes(completed.key) ? undefined : text;
    }, 10_000);
    assert.ok(contents, 'the completed task’s key was erased');
    assert.ok(contents.includes(completed.key_id) && contents.includes(cancelled.key_id), 'key IDs stay');
    assert.deepEqual(keyTraces(Buffer.from(contents), [completed.key, cancelled.key]), []);
  });
});

describe('ENCRYPTION_KEYS_FILE and ENCRYPTION_REQUIRED at the API', () => {
  test('a request without encryption is refused; {} takes the server’s keys', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'dvc-enc-required-'));
    const keysFile = path.join(root, 'keys.json');
    const serverKey = { key_id: hex(), key: hex() };
    await writeFile(keysFile, JSON.stringify(serverKey), { mode: 0o600 });
    const svc = await startTestService(
      { ENCRYPTION_KEYS_FILE: keysFile, ENCRYPTION_REQUIRED: 'true' },
      { worker: false, root },
    );
    try {
      const clear = await postJson(`${svc.url}/encode`, { video_filename: 'clip.mp4' });
      assert.equal(clear.status, 400);
      assert.match(String(clear.body.message), /encryption is required by this service/);
      const ok = await postJson(`${svc.url}/encode`, { video_filename: 'clip.mp4', encryption: {} });
      assert.equal(ok.status, 202, JSON.stringify(ok.body));
      const status = await getJson(`${svc.url}/status/${String(ok.body.task_id)}`);
      assert.deepEqual((status.body.options as { encryption: unknown }).encryption, {});
      assert.ok(!JSON.stringify(status.body).includes(serverKey.key));
    } finally {
      await svc.close();
    }
  });
});
