import assert from 'node:assert/strict';
import { copyFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkDashPackage } from '../helpers/package-check.js';
import { generateClip } from '../helpers/media.js';
import { getJson, startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';

describe('embedded default: HTTP → SQLite queue → FFmpeg → Shaka Packager → local disk', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc.close();
  });

  test('a 720p clip with audio converts to a two-rung DASH + HLS package', async () => {
    await copyFile(
      await generateClip({ width: 1280, height: 720, seconds: 6, audio: true }),
      path.join(svc.inputDir, 'example.mp4'),
    );
    const id = await submit(svc.url, 'example.mp4');
    const { doc, seen } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.ok(seen.has('processing') || seen.has('queued'), 'status moved through queued/processing');
    assert.equal(doc.progress, 100);
    assert.equal(doc.output?.manifest?.key, 'example/manifest.mpd');
    assert.equal(doc.output?.hls_master?.key, 'example/master.m3u8');
    assert.equal(doc.output?.poster.key, 'example/poster.jpg');
    assert.deepEqual(
      doc.output?.renditions.map((r) => [r.width, r.height]),
      [
        [640, 360],
        [1280, 720],
      ],
    );
    const pkg = path.join(svc.outputDir, 'example');
    const mpd = await checkDashPackage(pkg, { heights: [360, 720], audio: true, segmentDuration: 4 });
    const [low, high] = mpd.representations.filter((r) => r.contentType === 'video');
    assert.ok(low!.bandwidth < 1_200_000 && high!.bandwidth > 1_500_000, 'bandwidths follow the ladder');
    assert.ok((await readdir(pkg)).includes('poster.jpg'));
    assert.deepEqual(await readdir(path.join(svc.stateDir, 'work')), [], 'work directories are removed');
  });

  test('a video-only 640x360 source gives only 360p and no audio set (never upscaled)', async () => {
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 5, audio: false }),
      path.join(svc.inputDir, 'small.mp4'),
    );
    const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'small.mp4'));
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.equal(doc.output?.audio, false);
    await checkDashPackage(path.join(svc.outputDir, 'small'), {
      heights: [360],
      audio: false,
      segmentDuration: 4,
    });
  });

  test('a portrait 720x1280 source keeps its orientation', async () => {
    await copyFile(
      await generateClip({ width: 720, height: 1280, seconds: 5, audio: true }),
      path.join(svc.inputDir, 'portrait.mp4'),
    );
    const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'portrait.mp4'));
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.deepEqual(
      doc.output?.renditions.map((r) => [r.width, r.height]),
      [
        [360, 640],
        [720, 1280],
      ],
    );
    const mpd = await checkDashPackage(path.join(svc.outputDir, 'portrait'), {
      heights: [360, 720],
      audio: true,
    });
    for (const r of mpd.representations.filter((x) => x.contentType === 'video'))
      assert.ok(r.height! > r.width!);
  });

  test('unknown task id → 404', async () => {
    const res = await getJson(`${svc.url}/status/00000000-0000-0000-0000-000000000000`);
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'not_found');
  });
});
