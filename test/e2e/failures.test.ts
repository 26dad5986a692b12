import assert from 'node:assert/strict';
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';

describe('bad inputs fail with a reason and do not stop the next task', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc.close();
  });

  const cases: [string, (file: string) => Promise<void>, string, RegExp][] = [
    [
      'notes.mp4',
      (f) => writeFile(f, 'this is a text file, not a video\n'.repeat(50)),
      'not_a_video',
      /not a readable media file|no video/,
    ],
    ['empty.mp4', (f) => writeFile(f, ''), 'not_a_video', /empty/],
    ['missing.mp4', async () => undefined, 'input_not_found', /^input not found$/],
  ];

  for (const [name, make, code, reason] of cases) {
    test(`${name} → failed (${code})`, async () => {
      await make(path.join(svc.inputDir, name));
      const { doc } = await waitForFinal(svc.url, await submit(svc.url, name));
      assert.equal(doc.status, 'failed');
      assert.equal(doc.error_code, code);
      assert.match(doc.error ?? '', reason);
      assert.ok(!(doc.error ?? '').includes(svc.root), 'the reason does not reveal server paths');
      assert.equal(doc.output, null);
    });
  }

  test('an audio-only file fails with "no video stream"', async () => {
    const audio = path.join(svc.inputDir, 'song.mp4');
    const clip = await generateClip({ width: 320, height: 240, seconds: 2, audio: true });
    const { execFile } = await import('node:child_process');
    await new Promise<void>((resolve, reject) =>
      execFile('ffmpeg', ['-v', 'error', '-y', '-i', clip, '-vn', '-c:a', 'copy', audio], (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'song.mp4'));
    assert.equal(doc.status, 'failed');
    assert.match(doc.error ?? '', /no video stream/);
  });

  test('a good task after the bad ones completes', async () => {
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 3, audio: true }),
      path.join(svc.inputDir, 'good.mp4'),
    );
    const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'good.mp4'));
    assert.equal(doc.status, 'completed', doc.error ?? '');
  });

  test('unsafe keys and malformed bodies are refused with 400 and a message', async () => {
    for (const body of [
      { video_filename: '../etc/passwd' },
      { video_filename: '/etc/passwd' },
      { video_filename: 'a\\b.mp4' },
      { video_filename: '' },
      { video_filename: 42 },
      { video_filename: 'ok.mp4', surprise: true },
      {},
    ]) {
      const res = await fetch(`${svc.url}/encode`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 400, JSON.stringify(body));
      const json = (await res.json()) as { error: string; message: string };
      assert.equal(json.error, 'bad_request');
      assert.ok(json.message.length > 5);
    }
  });
});
