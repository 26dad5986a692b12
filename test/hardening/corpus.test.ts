import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestService, waitForFinal, type StatusDoc, type TestService } from '../helpers/service.js';
import { findMarked, newPathsOutside, snapshotTree } from './fs-checks.js';
import { makeHostileMedia, shortVideoLongAudio, tinyClip } from './hostile-media.js';

/**
 * The bad-input corpus: broken and hostile media, hostile names, malformed requests and callback targets
 * aimed at one running service. Each must end in a 400 (or 413/415) or a `failed` task with a reason, the
 * server must keep answering, nothing may be written outside the work and output roots, and a normal
 * upload must still convert afterwards.
 */

/** In every hostile name, so stray files made by a shell or a path escape are easy to find. */
const MARK = `hx${process.pid}`;

/** The server stopped answering or answered 5xx: the one outcome the corpus must never see. */
class ServerCrash extends Error {
  override name = 'ServerCrash';
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

describe('bad-input corpus', () => {
  let svc: TestService;
  let mediaDir: string;
  let media: Record<string, Buffer>;
  let goodClip: Buffer;
  let treeBefore: Set<string>;
  const uploaded = new Set<string>();
  const tally = { inputs: 0, handled: 0, crashes: 0 };

  before(async () => {
    mediaDir = await mkdtemp(path.join(tmpdir(), 'dvc-hostile-'));
    media = await makeHostileMedia(mediaDir);
    goodClip = await tinyClip(mediaDir, 'good.mp4', true);
    svc = await startTestService({
      MAX_INPUT_BYTES: String(3_000_000),
      CALLBACK_MAX_ATTEMPTS: '3',
      CALLBACK_BACKOFF_MS: '50',
    });
    for (const [name, data] of Object.entries(media)) await upload(name, data);
    await upload('too-big.mp4', Buffer.concat([goodClip, Buffer.alloc(3_100_000)]));
    // A file another client uploaded: the playlists below try to pull it into their own output.
    await upload('other-user.mp4', goodClip);
    // The parts a concat: URL would join if a name ever reached FFmpeg as one (3 s each).
    const threeSeconds = await tinyClip(mediaDir, 'three.mp4', true, 3);
    await upload(`${MARK}-a.mp4`, threeSeconds);
    await upload(`${MARK}-b.mp4`, threeSeconds);
    await upload('ffconcat.mp4', Buffer.from('ffconcat version 1.0\nfile other-user.mp4\n'));
    await upload(
      'playlist.mp4',
      Buffer.from('#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nother-user.mp4\n#EXT-X-ENDLIST\n'),
    );
    treeBefore = await snapshotTree(svc.root);
  });

  after(async () => {
    await svc?.close();
    await rm(mediaDir, { recursive: true, force: true });
    console.log(`${tally.inputs} inputs, ${tally.handled} handled, ${tally.crashes} crashes`);
  });

  async function upload(key: string, data: Buffer) {
    const file = path.join(svc.inputDir, key);
    for (let p = `input/${key}`; p !== 'input'; p = path.posix.dirname(p)) uploaded.add(p);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data);
  }

  async function send(
    method: string,
    pathname: string,
    body?: string,
    contentType = 'application/json',
  ): Promise<Reply> {
    let res: Response;
    try {
      res = await fetch(`${svc.url}${pathname}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': contentType },
        body,
      });
    } catch (err) {
      throw new ServerCrash(`${method} ${pathname}: no answer (${(err as Error).message})`);
    }
    const text = await res.text();
    if (res.status >= 500) throw new ServerCrash(`${method} ${pathname} answered ${res.status}: ${text}`);
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  }

  const encode = (body: unknown) =>
    send('POST', '/encode', typeof body === 'string' ? body : JSON.stringify(body));

  /** One corpus entry: counted, run, then the server must still answer. */
  function item(title: string, fn: () => Promise<void>) {
    tally.inputs++;
    test(title, async () => {
      try {
        await fn();
        const health = await send('GET', '/healthz');
        assert.equal(health.status, 200, 'the server still answers');
      } catch (err) {
        if (err instanceof ServerCrash) tally.crashes++;
        throw err;
      }
      tally.handled++;
    });
  }

  function rejected(
    title: string,
    body: unknown,
    message: RegExp,
    expect: { status?: number; error?: string; contentType?: string } = {},
  ) {
    item(`400 ${title}`, async () => {
      const raw = typeof body === 'string' ? body : JSON.stringify(body);
      const res = await send('POST', '/encode', raw, expect.contentType);
      assert.equal(res.status, expect.status ?? 400, JSON.stringify(res.body));
      assert.equal(res.body.error, expect.error ?? 'bad_request');
      assert.match(String(res.body.message), message);
    });
  }

  async function runTask(body: Record<string, unknown>): Promise<StatusDoc> {
    const res = await encode(body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const { doc } = await waitForFinal(svc.url, res.body.task_id as string, 60_000);
    return doc;
  }

  function fails(key: string, reason: RegExp, code: string, extra: Record<string, unknown> = {}) {
    item(`failed ${code}: ${JSON.stringify(key)}`, async () => {
      const doc = await runTask({ video_filename: key, ...extra });
      assert.equal(doc.status, 'failed', `expected a failure, got ${doc.status}`);
      assert.match(doc.error ?? '', reason);
      assert.equal(doc.error_code, code);
      assert.equal(doc.cancelled, false);
      assert.ok(!(doc.error ?? '').includes(svc.root), `the reason shows no server path: ${doc.error}`);
      assert.ok(!existsSync(path.join(svc.outputDir, key.replace(/\.[^./]*$/, ''))), 'nothing published');
    });
  }

  /** A strange but legal name: the file under it converts, and the package lands inside the output root. */
  function converts(key: string, checkDuration?: number) {
    item(`completed: ${JSON.stringify(key)}`, async () => {
      await upload(key, goodClip);
      const doc = await runTask({ video_filename: key });
      assert.equal(doc.status, 'completed', doc.error ?? '');
      const prefix = key.replace(/\.[^./]*$/, '');
      assert.equal(doc.output?.manifest?.key, `${prefix}/manifest.mpd`);
      assert.ok(
        existsSync(path.join(svc.outputDir, prefix, 'manifest.mpd')),
        'package inside the output root',
      );
      if (checkDuration !== undefined) {
        const duration = (doc.output as unknown as { duration: number }).duration;
        assert.ok(Math.abs(duration - checkDuration) < 0.2, `duration ${duration} s is the file's own`);
      }
    });
  }

  // ---- media that is not a video, or a broken one ----
  fails('text.mp4', /not a readable media file \(.*Invalid data found/, 'not_a_video');
  fails(
    'image.png',
    /not a video container this service accepts \(FFmpeg reads it as png_pipe\)/,
    'not_a_video',
  );
  fails(
    'image-named.mp4',
    /not a video container this service accepts \(FFmpeg reads it as png_pipe\)/,
    'not_a_video',
  );
  fails('document.pdf', /not a readable media file/, 'not_a_video');
  fails('empty.mp4', /the input file is empty/, 'not_a_video');
  fails('random.mp4', /not a readable media file/, 'not_a_video');
  fails('ftyp-only.mp4', /not a readable media file/, 'not_a_video');
  fails('no-moov.mp4', /moov atom not found/, 'not_a_video');
  fails('mdat-cut.mp4', /the input is truncated: its container describes \d+ bytes more/, 'invalid_input');
  fails('mkv-cut.mkv', /the input is truncated/, 'invalid_input');
  fails('avi-cut.avi', /the input is truncated/, 'invalid_input');
  item('completed: the same AVI whole (its RIFF chunk ends where the file does)', async () => {
    const doc = await runTask({ video_filename: 'avi-whole.avi' });
    assert.equal(doc.status, 'completed', doc.error ?? '');
  });
  fails(
    'corrupt-video.mp4',
    /no frame of its video stream could be decoded \(the stream is corrupt\)/,
    'encode_failed',
  );
  fails('audio-only.m4a', /the input has audio but no video stream/, 'not_a_video');
  fails('huge-16000x16000.avi', /the picture is 16000x16000, over the limit of \d+ pixels/, 'limit_exceeded');
  fails('fast-1000fps.mp4', /the frame rate is 1000\.00 fps, over the limit of 240 fps/, 'limit_exceeded');
  fails('fast-100000fps.y4m', /the frame rate is 100000\.00 fps, over the limit/, 'limit_exceeded');
  fails('long-claim.mkv', /the input lasts 1000000000 s, over the limit of 14400 s/, 'limit_exceeded');
  fails('cluster-bomb.mkv', /the stream is corrupt/, 'encode_failed');
  fails('nested-unknown-size.mkv', /the input contains no video stream/, 'not_a_video');
  fails('bad-lacing.mkv', /the stream is corrupt/, 'encode_failed');
  fails('too-big.mp4', /over the limit of 3000000 bytes/, 'limit_exceeded');
  fails(
    'ffconcat.mp4',
    /not a video container this service accepts \(FFmpeg reads it as concat\)/,
    'not_a_video',
  );
  fails(
    'playlist.mp4',
    /not a video container this service accepts \(FFmpeg reads it as hls\)/,
    'not_a_video',
  );
  fails(`never-uploaded-${MARK}.mp4`, /^input not found$/, 'input_not_found');

  // ---- hostile names that are legal keys: they reach FFmpeg only as one argument, never a shell ----
  converts(`; touch ${MARK}-semicolon ;.mp4`);
  converts(`$(touch ${MARK}-subst).mp4`);
  converts(`\`touch ${MARK}-backtick\`.mp4`);
  converts(`it's a "quoted" ${MARK}.mp4`);
  converts(`with  spaces ${MARK} .mp4`);
  converts(`-i ${MARK}.mp4`);
  converts(`-y`);
  converts(`%2e%2e/%2e%2e/${MARK}-percent.mp4`);
  // Would be two files joined by FFmpeg's concat protocol if the name ever reached it as a URL.
  converts(`concat:${MARK}-a.mp4|${MARK}-b.mp4`, 1);

  item('completed: "..mp4", whose stem is a dot: the package goes under its whole name', async () => {
    await upload('..mp4', goodClip);
    const doc = await runTask({ video_filename: '..mp4' });
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.equal(doc.output?.manifest?.key, '..mp4/manifest.mpd');
    assert.ok(
      existsSync(path.join(svc.outputDir, '..mp4', 'manifest.mpd')),
      'package inside the output root',
    );
  });

  for (const ext of ['mp4', 'mkv']) {
    item(
      `completed: video 1 s, audio 6 s (${ext}): a poster from the video, the package checks out`,
      async () => {
        await upload(`short-video.${ext}`, await shortVideoLongAudio(mediaDir, `short-video.${ext}`));
        const doc = await runTask({ video_filename: `short-video.${ext}` });
        assert.equal(doc.status, 'completed', doc.error ?? '');
        const poster = await readFile(path.join(svc.outputDir, 'short-video', 'poster.jpg'));
        assert.ok(poster.length > 500 && poster[0] === 0xff && poster[1] === 0xd8, 'a JPEG poster');
      },
    );
  }
  fails(`file:/etc/passwd`, /^input not found$/, 'input_not_found');
  fails(`subfile:,,start,0,end,100,,:other-user.mp4`, /^input not found$/, 'input_not_found');
  // Full-width dots and solidus, and the division slash: look like ../ but are ordinary characters.
  fails(`．．／．．／${MARK}.mp4`, /^input not found$/, 'input_not_found');
  fails(`..∕..∕${MARK}.mp4`, /^input not found$/, 'input_not_found');

  // ---- names refused at the door ----
  rejected('newline in the name', { video_filename: `a\n${MARK}.mp4` }, /control or invisible characters/);
  rejected('../ traversal', { video_filename: `../../${MARK}.mp4` }, /"\.\." path segments/);
  rejected('./ segment', { video_filename: `./${MARK}.mp4` }, /"\.\." path segments|"\." or/);
  rejected('absolute path', { video_filename: '/etc/passwd' }, /relative key, not an absolute path/);
  rejected('absolute path in tmp', { video_filename: `/tmp/${MARK}.mp4` }, /not an absolute path/);
  rejected('backslash traversal', { video_filename: `..\\..\\${MARK}.mp4` }, /must use \/ as separator/);
  rejected('NUL byte', { video_filename: `a\u0000${MARK}.mp4` }, /control or invisible characters/);
  rejected('zero-width space', { video_filename: `a\u200b${MARK}.mp4` }, /control or invisible characters/);
  rejected('right-to-left override', { video_filename: `${MARK}\u202e4pm.exe` }, /control or invisible/);
  rejected(
    'URL as a name',
    { video_filename: `http://127.0.0.1/${MARK}.mp4` },
    /empty, "\." or "\.\." path segments/,
  );
  rejected(
    '4 KB name',
    { video_filename: `${'a'.repeat(4096)}.mp4` },
    /must NOT have more than 1024 characters/,
  );
  rejected(
    '300-byte path segment',
    { video_filename: `${'b'.repeat(300)}.mp4` },
    /segment longer than 255 bytes/,
  );
  rejected(
    'a 960-byte name, too long to leave room for the package keys below its prefix',
    { video_filename: `${['0', '1', '2', '3'].map((c) => c.repeat(200)).join('/')}/${'z'.repeat(152)}.mp4` },
    /the output prefix made from video_filename is too long to hold a package: at most 928 bytes/,
  );
  rejected('empty name', { video_filename: '' }, /must NOT have fewer than 1 characters/);

  // ---- malformed request bodies ----
  rejected('name is a number', { video_filename: 123 }, /video_filename must be string/);
  rejected('name is an array', { video_filename: ['a.mp4'] }, /video_filename must be string/);
  rejected('name is null', { video_filename: null }, /video_filename must be string/);
  rejected('name is an object', { video_filename: { $ne: '' } }, /video_filename must be string/);
  rejected('missing name', {}, /must have required property 'video_filename'/);
  rejected(
    'extra field',
    { video_filename: 'a.mp4', shell: 'rm -rf /' },
    /body has an unknown field "shell"/,
  );
  rejected('body is an array', [{ video_filename: 'a.mp4' }], /body must be object/);
  rejected('body is a string', '"a.mp4"', /body must be object/);
  rejected('invalid JSON', '{"video_filename": "a.mp4"', /JSON|Unexpected end/);
  rejected('prototype pollution', '{"video_filename":"a.mp4","__proto__":{"admin":true}}', /not valid JSON/);
  rejected(
    'callback_url is a number',
    { video_filename: 'a.mp4', callback_url: 42 },
    /callback_url must be string/,
  );
  rejected(
    'text/plain body',
    '{"video_filename":"a.mp4"}',
    /text\/plain: send the body as application\/json/,
    {
      status: 415,
      error: 'unsupported_media_type',
      contentType: 'text/plain;charset=UTF-8',
    },
  );
  rejected('form-encoded body', 'video_filename=a.mp4', /Unsupported Media Type/, {
    status: 415,
    error: 'unsupported_media_type',
    contentType: 'application/x-www-form-urlencoded',
  });
  rejected(
    '10 MB body',
    JSON.stringify({ video_filename: 'a.mp4', padding: 'x'.repeat(10 * 1024 * 1024) }),
    /Request body is too large/,
    { status: 413, error: 'payload_too_large' },
  );

  // ---- per-request options ----
  const withOption = (title: string, option: Record<string, unknown>, message: RegExp) =>
    rejected(title, { video_filename: 'a.mp4', ...option }, message);
  withOption(
    'output_prefix ../',
    { output_prefix: `../../${MARK}` },
    /output_prefix must not contain .* "\.\." path/,
  );
  withOption(
    'output_prefix absolute',
    { output_prefix: `/tmp/${MARK}` },
    /output_prefix must be a relative key/,
  );
  withOption(
    'output_prefix backslash',
    { output_prefix: `..\\${MARK}` },
    /output_prefix must use \/ as separator/,
  );
  withOption('output_prefix newline', { output_prefix: `a\n${MARK}` }, /output_prefix contains control/);
  withOption(
    'rung of 100000 lines',
    { ladder: [{ height: 100000, bitrate: 800000 }] },
    /height must be <= 4320/,
  );
  withOption(
    '1000 rungs',
    { ladder: Array.from({ length: 1000 }, () => ({ height: 360, bitrate: 800_000 })) },
    /must NOT have more than 8 items/,
  );
  withOption('shell in a profile name', { ladder: '; rm -rf /' }, /ladder must match pattern/);
  withOption('unknown profile', { ladder: `${MARK}` }, /unknown profile/);
  withOption('segment_duration 0', { segment_duration: 0 }, /segment_duration must be >= 1/);
  withOption('segment_duration 1e9', { segment_duration: 1e9 }, /segment_duration must be <= 30/);
  withOption('segment_duration as a string', { segment_duration: '4' }, /segment_duration must be number/);
  withOption(
    'unknown format',
    { formats: ['dash; rm -rf /'] },
    /formats\/0 must be equal to one of the allowed/,
  );
  withOption('5 KB metadata', { metadata: { big: 'x'.repeat(5000) } }, /metadata must be at most 4096 bytes/);
  item('output_prefix with shell syntax is a plain key inside the output root', async () => {
    await upload('prefixed.mp4', goodClip);
    const prefix = `$(touch ${MARK}-prefix)/\`x\``;
    const doc = await runTask({ video_filename: 'prefixed.mp4', output_prefix: prefix });
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.ok(
      existsSync(path.join(svc.outputDir, prefix, 'manifest.mpd')),
      'published under the literal prefix',
    );
  });

  // ---- callback targets ----
  const callback = (title: string, url: string, message: RegExp) =>
    rejected(`callback ${title}`, { video_filename: 'a.mp4', callback_url: url }, message);
  callback('to 127.0.0.1', 'http://127.0.0.1:9/hook', /points at 127\.0\.0\.1, a private, loopback/);
  callback('to [::1]', 'http://[::1]:9/hook', /points at ::1, a private, loopback/);
  callback('to cloud metadata', 'http://169.254.169.254/latest/meta-data/', /points at 169\.254\.169\.254/);
  callback('to 10.x', 'http://10.0.0.1/hook', /points at 10\.0\.0\.1/);
  callback('to IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]/hook', /points at ::ffff:7f00:1/);
  callback('to loopback as a number', 'http://2130706433/hook', /points at 127\.0\.0\.1/);
  callback('to IPv4-compatible loopback', 'http://[::127.0.0.1]/hook', /points at ::7f00:1/);
  callback('to 6to4 of loopback', 'http://[2002:7f00:1::]/hook', /points at 2002:7f00:1::, a private/);
  callback(
    'to SIIT-translated loopback',
    'http://[::ffff:0:7f00:1]/hook',
    /points at ::ffff:0:7f00:1, a private/,
  );
  callback('to local-use NAT64', 'http://[64:ff9b:1::a00:1]/hook', /points at 64:ff9b:1::a00:1, a private/);
  callback('file://', 'file:///etc/passwd', /must use http or https/);
  callback('gopher://', 'gopher://127.0.0.1:70/_stats', /must use http or https/);
  callback('with credentials', 'http://user:pass@example.com/hook', /must not carry credentials/);
  callback('not a URL', 'not a url', /not a valid URL/);
  item('callback to a name resolving to loopback (localhost): task settles, delivery refused', async () => {
    const doc = await runTask({
      video_filename: `missing-${MARK}.mp4`,
      callback_url: 'http://localhost:9/hook',
    });
    assert.equal(doc.status, 'failed');
    const deadline = Date.now() + 10_000;
    let cb: Record<string, unknown> | null = null;
    while (Date.now() < deadline) {
      const res = await send('GET', `/status/${doc.task_id}`);
      cb = res.body.callback as Record<string, unknown> | null;
      if (cb?.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(cb?.status, 'failed', JSON.stringify(cb));
    assert.match(String(cb?.last_error), /callback host localhost resolves to a private or loopback address/);
    assert.equal(cb?.attempts, 1, 'a refused target is not retried');
  });

  // ---- after the corpus ----
  test('nothing was written outside the work and output roots', async () => {
    const stray = newPathsOutside(treeBefore, await snapshotTree(svc.root), ['output', 'state']);
    // Only what the tests themselves uploaded for the legal hostile names may be new in input/.
    assert.deepEqual(
      stray.filter((p) => !uploaded.has(p)),
      [],
      'new paths outside output/ and state/',
    );
    assert.deepEqual(await readdir(path.join(svc.stateDir, 'work')), [], 'every work directory was removed');
    const marked = await findMarked([tmpdir(), process.cwd(), path.dirname(svc.root)], MARK, [svc.root]);
    assert.deepEqual(marked, [], 'no file named after a hostile name outside the service roots');
    const outside = await findMarked([svc.root], MARK, [svc.inputDir, svc.outputDir]);
    assert.deepEqual(outside, [], 'no hostile name appears outside input/ and output/');
  });

  test('a normal upload still converts after the corpus', async () => {
    await upload('normal.mp4', goodClip);
    const doc = await runTask({ video_filename: 'normal.mp4' });
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.equal(doc.progress, 100);
    assert.equal(tally.crashes, 0);
    assert.ok(tally.inputs >= 30, `${tally.inputs} corpus inputs`);
  });
});
