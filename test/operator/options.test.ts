import assert from 'node:assert/strict';
import { copyFile, readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { checkDashPackage } from '../helpers/package-check.js';
import { getJson, startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';

/** A loopback receiver that keeps the bodies of the callbacks it gets. */
async function startReceiver() {
  const bodies: Record<string, unknown>[] = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(data) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map((f) => f.split(path.sep).join('/')).sort();
}

describe('per-request options change the output as documented', () => {
  let svc: TestService;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  before(async () => {
    receiver = await startReceiver();
    svc = await startTestService({ CALLBACK_ALLOW_PRIVATE: 'true' });
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 4, audio: true }),
      path.join(svc.inputDir, 'small.mp4'),
    );
    await copyFile(
      await generateClip({ width: 1280, height: 720, seconds: 4, audio: true }),
      path.join(svc.inputDir, 'hd.mp4'),
    );
  });
  after(async () => {
    await svc.close();
    await receiver.close();
  });

  test('a 3-rung ladder, 2 s segments, an output prefix and metadata', async () => {
    const metadata = { order: 'A-17', attempt: 1, labels: ['x'] };
    const id = await submit(svc.url, 'small.mp4', {
      ladder: [
        { height: 144, bitrate: 200_000 },
        { height: 240, bitrate: 400_000 },
        { height: 360, bitrate: 700_000 },
      ],
      segment_duration: 2,
      output_prefix: 'customers/7/run-1',
      metadata,
      callback_url: receiver.url,
    });
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.equal(doc.output?.prefix, 'customers/7/run-1');
    assert.equal(doc.output?.manifest?.key, 'customers/7/run-1/manifest.mpd');
    assert.deepEqual(
      doc.output?.renditions.map((r) => [r.width, r.height, r.bitrate]),
      [
        [256, 144, 200_000],
        [426, 240, 400_000],
        [640, 360, 700_000],
      ],
    );
    const dir = path.join(svc.outputDir, 'customers/7/run-1');
    const mpd = await checkDashPackage(dir, { heights: [144, 240, 360], audio: true, segmentDuration: 2 });
    assert.equal(mpd.representations.filter((r) => r.contentType === 'video').length, 3);
    const video = mpd.representations.find((r) => r.contentType === 'video')!;
    assert.equal(video.segments.length, 2, '4 s in 2 s segments');
    assert.ok(!(await readdir(svc.outputDir)).includes('small'), 'nothing under the input name');

    const full = (await getJson(`${svc.url}/status/${id}`)).body as Record<string, unknown>;
    assert.deepEqual(full.metadata, metadata);
    const timings = full.timings as Record<string, number>;
    for (const stage of ['fetch', 'probe', 'encode', 'package', 'poster', 'qc', 'publish', 'total'])
      assert.equal(typeof timings[stage], 'number', `timing of ${stage}`);
    assert.ok(timings.total! >= timings.encode!);
    assert.ok((full.encode_speed as number) > 0);
    const qc = full.qc as { passed: boolean; checks: { name: string; passed: boolean }[] };
    assert.equal(qc.passed, true);
    assert.deepEqual(
      qc.checks.map((c) => c.name),
      [
        'manifests_parse',
        'representations',
        'segments_exist',
        'segment_alignment',
        'segment_durations',
        'av_durations',
        'mpd_schema',
        'thumbnails',
      ],
    );

    const deadline = Date.now() + 10_000;
    while (!receiver.bodies.some((b) => b.task_id === id) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const callback = receiver.bodies.find((b) => b.task_id === id);
    assert.ok(callback, 'the callback arrived');
    assert.deepEqual(callback.metadata, metadata, 'metadata echoed in the callback');
    assert.equal(callback.status, 'completed');
  });

  test('formats ["hls"] gives playlists only, no MPD', async () => {
    const id = await submit(svc.url, 'small.mp4', { formats: ['hls'], output_prefix: 'hls-only' });
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.equal(doc.output?.manifest, undefined);
    assert.equal(doc.output?.hls_master?.key, 'hls-only/master.m3u8');
    const files = await filesUnder(path.join(svc.outputDir, 'hls-only'));
    assert.ok(!files.some((f) => f.endsWith('.mpd')), files.join(' '));
    assert.ok(files.includes('master.m3u8'));
    const media = doc.output!.media_prefix!.slice('hls-only/'.length);
    assert.ok(
      files.includes(`${media}/video_360p/playlist.m3u8`) && files.includes(`${media}/audio/playlist.m3u8`),
    );
    const playlist = await readFile(
      path.join(svc.outputDir, doc.output!.media_prefix!, 'video_360p/playlist.m3u8'),
      'utf8',
    );
    assert.match(playlist, /#EXT-X-ENDLIST/);
    const full = (await getJson(`${svc.url}/status/${id}`)).body as { qc: { checks: { name: string }[] } };
    assert.ok(!full.qc.checks.some((c) => c.name === 'mpd_schema'), 'no MPD to validate');
  });

  test('formats ["dash"] gives an MPD and no playlists', async () => {
    const id = await submit(svc.url, 'small.mp4', { formats: ['dash'], output_prefix: 'dash-only' });
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.equal(doc.output?.hls_master, undefined);
    const files = await filesUnder(path.join(svc.outputDir, 'dash-only'));
    assert.ok(files.includes('manifest.mpd'));
    assert.ok(!files.some((f) => f.endsWith('.m3u8')), files.join(' '));
  });

  test('the "seed" profile: 600k/3000k rungs, 3 s segments', async () => {
    const id = await submit(svc.url, 'hd.mp4', { profile: 'seed' });
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.deepEqual(
      doc.output?.renditions.map((r) => [r.height, r.bitrate]),
      [
        [360, 600_000],
        [720, 3_000_000],
      ],
    );
    await checkDashPackage(path.join(svc.outputDir, 'hd'), {
      heights: [360, 720],
      audio: true,
      segmentDuration: 3,
      decode: false,
    });
  });

  test('a request segment_duration overrides the profile', async () => {
    const id = await submit(svc.url, 'hd.mp4', {
      ladder: 'seed',
      segment_duration: 1,
      formats: ['dash'],
      output_prefix: 'seed-1s',
    });
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    const mpd = await checkDashPackage(path.join(svc.outputDir, 'seed-1s'), {
      heights: [360, 720],
      segmentDuration: 1,
      decode: false,
    });
    assert.equal(mpd.representations[0]!.segments.length, 4);
  });
});
