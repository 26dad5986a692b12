import assert from 'node:assert/strict';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { getJson, postJson, startTestService, type TestService } from '../helpers/service.js';

type Plan = {
  plan: { renditions: { name: string; codec: string; bitrate: number }[]; video_codecs: string[] };
  estimate: { output_bytes: number; work_seconds: number };
  warnings: { code: string; message: string }[];
};

/** A stand-in FFmpeg (FFMPEG_PATH) that is the real one without SVT-AV1: `-encoders` does not list it. */
async function ffmpegWithoutSvtAv1(dir: string): Promise<string> {
  const script = path.join(dir, 'ffmpeg');
  await writeFile(
    script,
    '#!/bin/sh\n' +
      'for a in "$@"; do [ "$a" = "-encoders" ] && { ffmpeg "$@" | grep -v libsvtav1; exit 0; }; done\n' +
      'exec ffmpeg "$@"\n',
  );
  await chmod(script, 0o755);
  return script;
}

describe('video_codecs in requests and plans', () => {
  let svc: TestService;
  before(async () => {
    // No worker: nothing here needs a task to run.
    svc = await startTestService({}, { worker: false });
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 4, audio: true }),
      path.join(svc.inputDir, 'small.mp4'),
    );
  });
  after(async () => {
    await svc?.close();
  });

  test('the plan lists each codec’s ladder at its factor, estimates more work and bytes for more encoders, and warns when H.264 is left out', async () => {
    const h264 = (await postJson(`${svc.url}/plan`, { video_filename: 'small.mp4' })).body as Plan;
    const res = await postJson(`${svc.url}/plan`, {
      video_filename: 'small.mp4',
      video_codecs: ['av1', 'vp9'],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const plan = res.body as Plan;
    assert.deepEqual(plan.plan.video_codecs, ['av1', 'vp9']);
    assert.deepEqual(
      plan.plan.renditions.map((r) => `${r.name} ${r.codec} ${r.bitrate}`),
      ['video_av1_360p av1 330000', 'video_vp9_360p vp9 412500'],
    );
    const warning = plan.warnings.find((w) => w.code === 'no_h264');
    assert.ok(warning, JSON.stringify(plan.warnings));
    assert.match(warning.message, /no H\.264 renditions/);
    assert.equal(
      h264.warnings.find((w) => w.code === 'no_h264'),
      undefined,
    );
    // Two encoders, each costlier per pixel than x264's one.
    assert.ok(plan.estimate.work_seconds > h264.estimate.work_seconds, 'more work');
    const both = (
      await postJson(`${svc.url}/plan`, { video_filename: 'small.mp4', video_codecs: ['h264', 'av1'] })
    ).body as Plan;
    assert.ok(both.estimate.output_bytes > h264.estimate.output_bytes, 'more bytes with a second ladder');
    assert.equal(
      both.warnings.find((w) => w.code === 'no_h264'),
      undefined,
    );
  });

  test('an unknown codec, or none, is a 400 naming the field', async () => {
    for (const video_codecs of [['h264', 'av2'], [], 'av1', ['h264', 'h264']]) {
      for (const route of ['/encode', '/plan']) {
        const res = await postJson(`${svc.url}${route}`, { video_filename: 'small.mp4', video_codecs });
        assert.equal(res.status, 400, `${route} ${JSON.stringify(video_codecs)}`);
        assert.match(String(res.body.message), /video_codecs/);
      }
    }
  });
});

describe('an FFmpeg without a configured or requested encoder', () => {
  let svc: TestService;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-ffmpeg-'));
    svc = await startTestService(
      { FFMPEG_PATH: await ffmpegWithoutSvtAv1(dir), VIDEO_CODECS: 'h264,av1' },
      // A worker would refuse to start: its check at start is the one /readyz runs.
      { worker: false },
    );
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 4, audio: true }),
      path.join(svc.inputDir, 'small.mp4'),
    );
  });
  after(async () => {
    await svc?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('/readyz fails its tools check naming the missing encoder', async () => {
    const res = await getJson(`${svc.url}/readyz`);
    assert.equal(res.status, 503);
    const checks = res.body.checks as Record<string, string>;
    assert.match(checks.tools!, /no libsvtav1 encoder/);
  });

  test('a request for that codec is a 400 saying so; one without it is queued', async () => {
    for (const route of ['/encode', '/plan']) {
      const res = await postJson(`${svc.url}${route}`, {
        video_filename: 'small.mp4',
        video_codecs: ['av1'],
      });
      assert.equal(res.status, 400, route);
      assert.match(String(res.body.message), /cannot encode av1 \(libsvtav1\)/);
    }
    const ok = await postJson(`${svc.url}/encode`, {
      video_filename: 'small.mp4',
      video_codecs: ['h264', 'vp9'],
    });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
  });
});
