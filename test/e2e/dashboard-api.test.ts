import assert from 'node:assert/strict';
import { copyFile, readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { ensureDashboardBuilt } from '../browser/chromium.js';
import { generateClip } from '../helpers/media.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import {
  getJson,
  postJson,
  startTestService,
  submit,
  waitForFinal,
  type TestService,
} from '../helpers/service.js';
import { poll } from '../hardening/procs.js';

async function uploadForm(url: string, name: string, body: Uint8Array, headers: Record<string, string> = {}) {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(body)], { type: 'video/mp4' }), name);
  const res = await fetch(url, { method: 'POST', body: form, headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every file under dir, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** Reads an SSE stream until `until` says the text so far is enough (or the time runs out). */
async function readEvents(url: string, until: (text: string) => boolean, timeoutMs = 60_000) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let text = '';
  try {
    const res = await fetch(url, { signal: abort.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const decoder = new TextDecoder();
    const reader = res.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (until(text)) break;
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return text
    .split('\n\n')
    .filter((f) => f.startsWith('event: '))
    .map((f) => {
      const [event, data] = f.split('\n');
      return {
        event: event!.slice(7),
        tasks: (
          JSON.parse(data!.slice(6)) as { tasks: { task_id: string; status: string; progress: number }[] }
        ).tasks,
      };
    });
}

describe('dashboard API on local storage: uploads, events, output files, the page', () => {
  let svc: TestService;
  before(async () => {
    await ensureDashboardBuilt();
    svc = await startTestService({ MAX_INPUT_BYTES: String(4 * 1024 * 1024) });
  });
  after(async () => {
    await svc.close();
  });

  test('GET /uploads tells the client how to upload', async () => {
    const res = await fetch(`${svc.url}/uploads`);
    assert.deepEqual(await res.json(), { max_bytes: 4 * 1024 * 1024, multipart: true, presigned: false });
  });

  test('a multipart upload is stored whole under a unique, sanitised key; names never escape', async () => {
    const body = new Uint8Array(300_000).map((_, i) => i % 251);
    const keys: string[] = [];
    for (const [name, expected] of [
      ['../../etc/passwd', 'passwd'],
      ['C:\\Users\\me\\My Vidéo (1).mov', 'My_Vidéo_1_.mov'],
      ['..', 'video'],
      ['.hidden.mp4', 'hidden.mp4'],
      ['clip.mp4', 'clip.mp4'],
      ['clip.mp4', 'clip.mp4'],
    ] as const) {
      const res = await uploadForm(`${svc.url}/uploads`, name, body);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const key = res.body.video_filename as string;
      assert.match(key, /^uploads\/[0-9a-f-]{36}\/[^/]+$/);
      assert.equal(key.split('/')[2], expected);
      assert.equal(res.body.bytes, body.length);
      assert.equal(res.body.task_id, undefined, 'no task without encode=true');
      assert.deepEqual(await readFile(path.join(svc.inputDir, key)), Buffer.from(body));
      keys.push(key);
    }
    assert.equal(new Set(keys).size, keys.length, 'the same name twice gives two keys');
    assert.ok((await filesUnder(svc.inputDir)).every((f) => !f.endsWith('.part')));
  });

  test('too large, empty, not a form, or JSON on local storage: refused, nothing left behind', async () => {
    const before = await filesUnder(svc.inputDir);
    const big = await uploadForm(`${svc.url}/uploads`, 'big.mp4', new Uint8Array(4 * 1024 * 1024 + 1));
    assert.equal(big.status, 413);
    assert.equal(big.body.error, 'payload_too_large');
    const empty = await uploadForm(`${svc.url}/uploads`, 'empty.mp4', new Uint8Array(0));
    assert.equal(empty.status, 400);
    assert.match(empty.body.message as string, /empty/);
    const text = await fetch(`${svc.url}/uploads`, {
      method: 'POST',
      body: 'x',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(text.status, 415);
    const json = await postJson(`${svc.url}/uploads`, { filename: 'a.mp4', content_type: 'video/mp4' });
    assert.equal(json.status, 415);
    assert.match(json.body.message as string, /multipart/);
    const noFile = new FormData();
    noFile.append('note', 'no file here');
    const res = await fetch(`${svc.url}/uploads`, { method: 'POST', body: noFile });
    assert.equal(res.status, 400);
    assert.deepEqual(await filesUnder(svc.inputDir), before, 'no file or .part left by refused uploads');
  });

  test('/output serves names with &, +, =, comma, ;, :, @, $, space, # or % in them, encoded per segment', async () => {
    for (const name of ['Tom & Jerry, pt 1', 'a+b=c;d:e@f$g', 'sp ace#h%25?q']) {
      await mkdir(path.join(svc.outputDir, name), { recursive: true });
      await writeFile(path.join(svc.outputDir, name, 'manifest.mpd'), `<MPD id="${name}"/>`);
      const res = await fetch(`${svc.url}/output/${encodeURIComponent(name)}/manifest.mpd`);
      assert.equal(res.status, 200, name);
      assert.equal(await res.text(), `<MPD id="${name}"/>`);
    }
  });

  test('HEAD /events answers at once (a monitor probing it was left hanging)', async () => {
    const res = await fetch(`${svc.url}/events`, { method: 'HEAD', signal: AbortSignal.timeout(5_000) });
    assert.equal(res.status, 404);
  });

  test('encode=true submits; /events sends a snapshot then updates up to completion; /output serves it', async () => {
    const clip = await readFile(await generateClip({ width: 640, height: 360, seconds: 4, audio: true }));
    const eventsDone = readEvents(`${svc.url}/events`, (t) => t.includes('"status":"completed"'));
    const submitted = async () => {
      const text = await (await fetch(`${svc.url}/metrics`)).text();
      return Number(/^dvc_tasks_submitted_total\{outcome="created"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    const before = await submitted();
    const res = await uploadForm(`${svc.url}/uploads?encode=true`, 'show.mp4', clip);
    assert.equal(res.status, 201);
    assert.equal(await submitted(), before + 1, 'counted as a submitted task');
    const id = res.body.task_id as string;
    assert.equal(res.body.status_url, `/status/${id}`);
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');

    const events = await eventsDone;
    assert.equal(events[0]?.event, 'snapshot');
    const mine = events.flatMap((e) =>
      e.tasks.filter((t) => t.task_id === id).map((t) => ({ ...t, event: e.event })),
    );
    assert.ok(
      mine.some((t) => t.event === 'update'),
      'the task came through update events',
    );
    assert.equal(mine.at(-1)?.status, 'completed');
    assert.equal(mine.at(-1)?.progress, 100);

    const list = (await (await fetch(`${svc.url}/tasks`)).json()) as {
      tasks: { task_id: string }[];
    };
    assert.equal(list.tasks[0]?.task_id, id, 'newest first');

    const out = doc.output!;
    for (const [key, type] of [
      [out.manifest!.key, 'application/dash+xml'],
      [out.hls_master!.key, 'application/vnd.apple.mpegurl'],
      [out.poster.key, 'image/jpeg'],
    ] as const) {
      const file = await fetch(`${svc.url}/output/${key}`);
      assert.equal(file.status, 200, key);
      assert.equal(file.headers.get('content-type'), type);
      assert.deepEqual(Buffer.from(await file.arrayBuffer()), await readFile(path.join(svc.outputDir, key)));
    }
    const files = await filesUnder(path.join(svc.outputDir, out.media_prefix!));
    for (const [dir, type] of [
      ['video_360p/', 'video/mp4'],
      ['audio/', 'audio/mp4'],
    ] as const) {
      const segment = files.find((f) => f.startsWith(dir) && f.endsWith('.m4s'));
      assert.ok(segment, `a segment under ${dir}`);
      const seg = await fetch(`${svc.url}/output/${out.media_prefix}/${segment}`);
      assert.equal(seg.headers.get('content-type'), type, segment);
      assert.match(seg.headers.get('cache-control') ?? '', /immutable/);
      await seg.arrayBuffer();
    }
  });

  test('/output never serves a file being written, nor anything outside the output directory', async () => {
    await mkdir(path.join(svc.outputDir, 'wip'), { recursive: true });
    await writeFile(path.join(svc.outputDir, 'wip', 'manifest.mpd.abc123def456.part'), '<MPD/>');
    assert.equal((await fetch(`${svc.url}/output/wip/manifest.mpd.abc123def456.part`)).status, 404);
    for (const p of [
      '/output/../state/tasks.db',
      '/output/%2e%2e/state/tasks.db',
      '/output/..%2fstate%2ftasks.db',
    ]) {
      const res = await fetch(`${svc.url}${p}`);
      assert.ok([400, 403, 404].includes(res.status), `${p} → ${res.status}`);
    }
  });

  test('requests refused before any route still answer in the API error shape', async () => {
    const huge = await fetch(`${svc.url}/tasks`, { headers: { 'x-big': 'a'.repeat(20_000) } });
    assert.equal(huge.status, 431);
    assert.deepEqual(await huge.json(), {
      error: 'headers_too_large',
      message: 'the request headers are too large',
    });
    const doubled = await fetch(`${svc.url}//output/a/manifest.mpd`);
    assert.ok([403, 404].includes(doubled.status), String(doubled.status));
    const body = (await doubled.json()) as { error: string };
    assert.equal(body.error, doubled.status === 403 ? 'forbidden' : 'not_found');
  });

  test('the page and its script are served with a content security policy', async () => {
    const page = await fetch(`${svc.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await page.text(), /<script type="module" src="app.js">/);
    const script = await fetch(`${svc.url}/app.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    assert.ok((await script.arrayBuffer()).byteLength > 100_000, 'the bundle carries Shaka Player');
    assert.equal((await fetch(`${svc.url}/no-such-file.js`)).status, 404);
  });

  test('the script and page go compressed to browsers that accept it (built once, not per request)', async () => {
    /** The raw answer, as a browser's network layer sees it before decoding. */
    const raw = (p: string, acceptEncoding?: string) =>
      new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const req = http.get(
          `${svc.url}${p}`,
          { headers: acceptEncoding ? { 'accept-encoding': acceptEncoding } : {} },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
      });
    const plain = await raw('/app.js');
    assert.equal(plain.headers['content-encoding'], undefined);
    const br = await raw('/app.js', 'gzip, deflate, br');
    assert.equal(br.headers['content-encoding'], 'br');
    assert.match(String(br.headers['content-type']), /javascript/);
    assert.match(String(br.headers['vary']), /accept-encoding/i);
    assert.match(String(br.headers['content-security-policy']), /script-src 'self'/);
    assert.ok(br.body.length < plain.body.length / 3, `${br.body.length} vs ${plain.body.length} bytes`);
    assert.ok(brotliDecompressSync(br.body).equals(plain.body), 'the same script once decoded');
    const gz = await raw('/', 'gzip');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.match(String(gz.headers['content-type']), /^text\/html/);
    assert.match(gunzipSync(gz.body).toString('utf8'), /<script type="module" src="app.js">/);
  });

  test('a task pushed out of the newest 50 by a batch while it runs still gets its updates to the end', async () => {
    const busy = await startTestService({ WORKER_CONCURRENCY: '1' });
    try {
      await copyFile(
        await generateClip({ width: 640, height: 360, seconds: 20, audio: true }),
        path.join(busy.inputDir, 'first.mp4'),
      );
      const first = await submit(busy.url, 'first.mp4');
      const events = readEvents(`${busy.url}/events`, (t) =>
        t.includes(`"task_id":"${first}","status":"completed"`),
      );
      await poll(
        async () =>
          (await getJson(`${busy.url}/status/${first}`)).body.status === 'processing' ? true : undefined,
        20_000,
      );
      for (let i = 0; i < 55; i++) await submit(busy.url, `batch/missing-${i}.mp4`);
      const { doc } = await waitForFinal(busy.url, first);
      assert.equal(doc.status, 'completed');
      const updates = (await events).flatMap((e) => e.tasks).filter((t) => t.task_id === first);
      assert.equal(updates.at(-1)?.status, 'completed', 'the stream told the end of the task it had shown');
    } finally {
      await busy.close();
    }
  });

  test('closing the service ends open event streams instead of waiting on them', async () => {
    const other = await startTestService({}, { worker: false });
    const abort = new AbortController();
    const res = await fetch(`${other.url}/events`, { signal: abort.signal });
    assert.equal(res.status, 200);
    const started = Date.now();
    const closed = await Promise.race([
      other.close().then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 10_000).unref()),
    ]);
    abort.abort();
    assert.ok(closed, 'the service closed within 10 s with a stream open');
    assert.ok(Date.now() - started < 5000, `closed in ${Date.now() - started} ms`);
  });
});

describe('dashboard API behind an API key', () => {
  const key = 'dash-api-key';
  let svc: TestService;
  before(async () => {
    await ensureDashboardBuilt();
    svc = await startTestService({ API_KEY: key }, { worker: false });
  });
  after(async () => {
    await svc.close();
  });

  test('the page is public; uploads, events and output files need the key', async () => {
    assert.equal((await fetch(`${svc.url}/`)).status, 200);
    for (const p of ['/uploads', '/events', '/output/a/manifest.mpd']) {
      const res = await fetch(`${svc.url}${p}`);
      assert.equal(res.status, 401, p);
      await res.arrayBuffer();
    }
    const refused = await uploadForm(`${svc.url}/uploads`, 'a.mp4', new Uint8Array(10));
    assert.equal(refused.status, 401);
    assert.deepEqual(await filesUnder(svc.inputDir), []);
    const ok = await uploadForm(`${svc.url}/uploads`, 'a.mp4', new Uint8Array(10), { 'x-api-key': key });
    assert.equal(ok.status, 201);
    const list = await fetch(`${svc.url}/tasks`, { headers: { 'x-api-key': key } });
    assert.equal(list.status, 200);
  });
});

describe('dashboard API on S3 input storage: presigned uploads', () => {
  let s3: TestS3;
  let svc: TestService;
  let bucket: string;
  before(async () => {
    s3 = await startS3Server();
    bucket = await s3.createBucket('uploads');
    svc = await startTestService(s3.env({ INPUT_S3_BUCKET: bucket, MAX_INPUT_BYTES: '5000000' }), {
      worker: false,
    });
  });
  after(async () => {
    await svc?.close();
    await s3?.stop();
  });

  test('JSON {filename, content_type} gives a PUT URL; the PUT stores the object; POST /encode takes the key', async () => {
    const opts = (await (await fetch(`${svc.url}/uploads`)).json()) as { presigned: boolean };
    assert.equal(opts.presigned, true);
    const res = await postJson(`${svc.url}/uploads`, {
      filename: '../Holiday clip.mp4',
      content_type: 'video/mp4',
      size: 1000,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const key = res.body.video_filename as string;
    assert.match(key, /^uploads\/[0-9a-f-]{36}\/Holiday_clip\.mp4$/);
    assert.equal(res.body.method, 'PUT');
    assert.deepEqual(res.body.headers, { 'content-type': 'video/mp4' });
    const put = await fetch(res.body.upload_url as string, {
      method: 'PUT',
      headers: res.body.headers as Record<string, string>,
      body: new Uint8Array(1000),
    });
    assert.equal(put.status, 200);
    const stored = await s3.listObjects(bucket, 'uploads/');
    assert.deepEqual(
      stored.map((o) => [o.key, o.size]),
      [[key, 1000]],
    );
    const submitted = await postJson(`${svc.url}/encode`, { video_filename: key });
    assert.equal(submitted.status, 202);
  });

  test('a declared size over the limit, unknown fields and a missing name are refused', async () => {
    const big = await postJson(`${svc.url}/uploads`, { filename: 'a.mp4', size: 5_000_001 });
    assert.equal(big.status, 413);
    const extra = await postJson(`${svc.url}/uploads`, { filename: 'a.mp4', bucket: 'other' });
    assert.equal(extra.status, 400);
    assert.equal(extra.body.message, 'body has an unknown field "bucket"');
    const none = await postJson(`${svc.url}/uploads`, { content_type: 'video/mp4' });
    assert.equal(none.status, 400);
  });
});
