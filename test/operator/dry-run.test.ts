import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { generateClip, sharedMediaDir } from '../helpers/media.js';
import {
  getJson,
  postJson,
  startTestService,
  submit,
  waitForFinal,
  type TestService,
} from '../helpers/service.js';

const run = promisify(execFile);

type Plan = {
  dry_run: true;
  output_prefix: string;
  input: {
    duration: number;
    video: {
      width: number;
      height: number;
      rotation: number;
      variable_frame_rate: boolean;
      interlaced: boolean;
    };
    audio: unknown;
  };
  plan: {
    renditions: { name: string; width: number; height: number; bitrate: number }[];
    audio: { bitrate: number } | null;
    gop_frames: number;
    segment_duration: number;
    segments: number;
    frame_rate: number;
    formats: string[];
    preset: string;
  };
  estimate: { output_bytes: number; work_seconds: number; basis: string };
  warnings: { code: string; message: string }[];
};

describe('dry runs: POST /encode?dry_run=true and POST /plan', () => {
  let svc: TestService;
  before(async () => {
    // A worker runs too, so a task created by mistake would be visible (and processed).
    svc = await startTestService();
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 4, audio: true }),
      path.join(svc.inputDir, 'small.mp4'),
    );
    // Odd-sized, interlaced, silent: MPEG-2 in Matroska, cropped to 321x241.
    await run('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=322x242:rate=25:duration=2',
      '-vf',
      'crop=321:241:0:0',
      '-c:v',
      'mpeg2video',
      '-flags',
      '+ildct+ilme',
      '-top',
      '1',
      path.join(svc.inputDir, 'odd-interlaced.mkv'),
    ]);
    // HDR as phones record it: 10-bit HEVC whose stream says HLG, BT.2020.
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=1'],
      ...['-vf', 'format=yuv420p10le', '-c:v', 'libx265', '-preset', 'ultrafast'],
      ...['-x265-params', 'log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc'],
      path.join(svc.inputDir, 'hlg.mp4'),
    ]);
    await copyFile(
      path.join(sharedMediaDir, 'phone_rot180_vfr_720p.mp4'),
      path.join(svc.inputDir, 'phone.mp4'),
    );
    await writeFile(path.join(svc.inputDir, 'notes.mp4'), 'this is not a video\n');
    // 0.5 s of video over 3 s of audio that starts 1 s in.
    await run('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=0.5'],
      ...['-itsoffset', '1', '-f', 'lavfi', '-i', 'sine=sample_rate=48000:duration=2'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac'],
      path.join(svc.inputDir, 'apart.mp4'),
    ]);
  });
  after(async () => {
    await svc.close();
  });

  test('shows the plan after the no-upscale rule, with estimates, and queues nothing', async () => {
    const res = await postJson(`${svc.url}/encode?dry_run=true`, { video_filename: 'small.mp4' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const plan = res.body as unknown as Plan;
    assert.equal(plan.dry_run, true);
    assert.equal(plan.output_prefix, 'small');
    assert.deepEqual(
      plan.plan.renditions.map((r) => [r.name, r.width, r.height, r.bitrate]),
      [['video_360p', 640, 360, 550_000]],
    );
    assert.ok(plan.plan.audio);
    assert.equal(plan.plan.segment_duration, 4);
    assert.equal(plan.plan.gop_frames, 120, '4 s at 30 fps');
    assert.equal(plan.plan.segments, 1);
    assert.deepEqual(plan.plan.formats, ['dash', 'hls']);
    const expectedBytes = ((550_000 + 128_000) * 4) / 8;
    assert.ok(
      Math.abs(plan.estimate.output_bytes - expectedBytes) < expectedBytes * 0.1,
      `${plan.estimate.output_bytes}`,
    );
    assert.ok(plan.estimate.work_seconds > 0);
    assert.equal(plan.estimate.basis, 'default', 'nothing was encoded in this process yet');
    assert.deepEqual(
      plan.warnings.map((w) => w.code),
      ['rungs_skipped'],
    );
    assert.match(plan.warnings[0]!.message, /720p/);

    const listed = await getJson(`${svc.url}/tasks`);
    assert.deepEqual(listed.body.tasks, [], 'no task was created');
    assert.deepEqual(
      await readdir(path.join(svc.stateDir, 'work')),
      [],
      'the dry run left no work directory',
    );
  });

  test('POST /plan answers the same, with the request options applied', async () => {
    const body = {
      video_filename: 'small.mp4',
      ladder: [
        { height: 180, bitrate: 300_000 },
        { height: 360, bitrate: 900_000 },
      ],
      segment_duration: 2,
      formats: ['hls'],
      output_prefix: 'plans/p1',
    };
    const viaPlan = await postJson(`${svc.url}/plan`, body);
    const viaEncode = await postJson(`${svc.url}/encode?dry_run=true`, body);
    assert.equal(viaPlan.status, 200);
    assert.deepEqual(viaPlan.body, viaEncode.body);
    const plan = viaPlan.body as unknown as Plan;
    assert.equal(plan.output_prefix, 'plans/p1');
    assert.deepEqual(
      plan.plan.renditions.map((r) => r.height),
      [180, 360],
    );
    assert.equal(plan.plan.segments, 2);
    assert.equal(plan.plan.gop_frames, 60);
    assert.deepEqual(plan.plan.formats, ['hls']);
    assert.deepEqual(plan.warnings, []);
    const seed = (await postJson(`${svc.url}/plan`, { video_filename: 'small.mp4', ladder: 'seed' }))
      .body as unknown as Plan;
    assert.equal(seed.plan.preset, 'ultrafast');
    assert.equal(seed.plan.segment_duration, 3);
    assert.deepEqual(
      seed.plan.renditions.map((r) => r.bitrate),
      [600_000],
    );
  });

  test('says that an HDR source is tone-mapped to SDR', async () => {
    const res = await postJson(`${svc.url}/plan`, { video_filename: 'hlg.mp4' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const warning = (res.body as unknown as Plan).warnings.find((w) => w.code === 'hdr');
    assert.match(warning?.message ?? '', /HDR \(HLG\): renditions are tone-mapped to SDR BT\.709/);
    const small = await postJson(`${svc.url}/plan`, { video_filename: 'small.mp4' });
    assert.ok(!(small.body as unknown as Plan).warnings.some((w) => w.code === 'hdr'), 'SDR: no warning');
  });

  test('warns about odd dimensions, interlacing and missing audio', async () => {
    const res = await postJson(`${svc.url}/plan`, { video_filename: 'odd-interlaced.mkv' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const plan = res.body as unknown as Plan;
    assert.equal(plan.input.video.width, 321);
    assert.equal(plan.input.video.interlaced, true);
    assert.equal(plan.input.audio, null);
    assert.equal(plan.plan.audio, null);
    const codes = plan.warnings.map((w) => w.code);
    for (const code of ['odd_dimensions', 'interlaced', 'no_audio', 'source_sized_rung'])
      assert.ok(codes.includes(code), `${code} in ${codes.join(', ')}`);
    assert.deepEqual(
      plan.plan.renditions.map((r) => [r.width % 2, r.height % 2]),
      [[0, 0]],
      'renditions have even sizes',
    );
  });

  test('says when the audio starts after the video and the video ends before the audio', async () => {
    const res = await postJson(`${svc.url}/plan`, { video_filename: 'apart.mp4' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const warnings = (res.body as unknown as Plan).warnings;
    assert.match(
      warnings.find((w) => w.code === 'audio_starts_late')?.message ?? '',
      /silence is added before it/,
    );
    assert.match(
      warnings.find((w) => w.code === 'video_ends_early')?.message ?? '',
      /the video ends 2\.[45]\d* s before the audio/,
    );
    const small = await postJson(`${svc.url}/plan`, { video_filename: 'small.mp4' });
    const codes = (small.body as unknown as Plan).warnings.map((w) => w.code);
    assert.ok(!codes.includes('audio_starts_late') && !codes.includes('video_ends_early'), codes.join(', '));
  });

  test('warns about rotation and a variable frame rate', async () => {
    const res = await postJson(`${svc.url}/plan`, { video_filename: 'phone.mp4' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const plan = res.body as unknown as Plan;
    assert.equal(plan.input.video.rotation, 180);
    assert.equal(plan.input.video.variable_frame_rate, true);
    const codes = plan.warnings.map((w) => w.code);
    assert.ok(codes.includes('rotation') && codes.includes('variable_frame_rate'), codes.join(', '));
  });

  test('an input a task would refuse is a 400 or 404 with the reason', async () => {
    const missing = await postJson(`${svc.url}/plan`, { video_filename: 'nowhere.mp4' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'not_found');
    const text = await postJson(`${svc.url}/encode?dry_run=true`, { video_filename: 'notes.mp4' });
    assert.equal(text.status, 400);
    assert.match(String(text.body.message), /not a (readable media file|video)/);
    const unknown = await postJson(`${svc.url}/plan`, { video_filename: 'small.mp4', ladder: 'ultra' });
    assert.equal(unknown.status, 400);
    assert.match(String(unknown.body.message), /unknown profile/);
    assert.deepEqual((await getJson(`${svc.url}/tasks`)).body.tasks, []);
    assert.deepEqual(await readdir(path.join(svc.stateDir, 'work')), []);
  });

  test('subtitle files: listed by the plan; a missing one is a 404, one that is not subtitles a 400 and a failed task', async () => {
    await writeFile(path.join(svc.inputDir, 'small.fr.srt'), '1\n00:00:00,500 --> 00:00:09,000\nBonjour\n');
    await writeFile(
      path.join(svc.inputDir, 'cover.srt'),
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0, 0]),
    );
    const sidecar = (filename: string) => ({
      video_filename: 'small.mp4',
      subtitles: [{ filename, language: 'fr', forced: true }],
    });
    const ok = await postJson(`${svc.url}/plan`, sidecar('small.fr.srt'));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual((ok.body.plan as { subtitles: unknown }).subtitles, [
      { name: 'text_1', language: 'fr', label: 'Français (forced)', forced: true, source: 'small.fr.srt' },
    ]);
    const missing = await postJson(`${svc.url}/plan`, sidecar('nowhere.srt'));
    assert.equal(missing.status, 404);
    assert.match(String(missing.body.message), /subtitle file not found: "nowhere\.srt"/);
    const binary = await postJson(`${svc.url}/plan`, sidecar('cover.srt'));
    assert.equal(binary.status, 400);
    assert.match(String(binary.body.message), /"cover\.srt" cannot be used: it is a binary file/);
    const escape = await postJson(`${svc.url}/plan`, sidecar('../etc/passwd'));
    assert.equal(escape.status, 400);

    const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'small.mp4', sidecar('cover.srt')));
    assert.equal(doc.status, 'failed');
    assert.equal(doc.error_code, 'invalid_subtitles');
    assert.match(String(doc.error), /"cover\.srt" cannot be used: it is a binary file/);
    assert.deepEqual(await readdir(svc.outputDir), [], 'nothing published');
  });

  test('more plans at once than the API makes are refused with 429 and Retry-After, none lost or stuck', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${svc.url}/plan`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ video_filename: 'phone.mp4' }),
        }),
      ),
    );
    const statuses = answers.map((r) => r.status).sort();
    assert.ok(
      statuses.every((s) => s === 200 || s === 429),
      statuses.join(','),
    );
    assert.ok(statuses.filter((s) => s === 200).length >= 4, `at least 4 answered: ${statuses.join(',')}`);
    const refused = answers.find((r) => r.status === 429);
    assert.ok(refused, `some were refused: ${statuses.join(',')}`);
    assert.equal(refused.headers.get('retry-after'), '2');
    assert.deepEqual(await refused.json(), {
      error: 'too_many_requests',
      message: '4 plans are being made; try again shortly',
    });
    await Promise.all(answers.filter((r) => r !== refused).map((r) => r.arrayBuffer()));
    // Every slot was given back.
    const again = await Promise.all(
      Array.from({ length: 4 }, () => postJson(`${svc.url}/plan`, { video_filename: 'small.mp4' })),
    );
    assert.deepEqual(
      again.map((r) => r.status),
      [200, 200, 200, 200],
    );
  });

  test('after a task, estimates use the speed this process measured', async () => {
    const res = await postJson(`${svc.url}/encode`, {
      video_filename: 'small.mp4',
      output_prefix: 'measured',
    });
    assert.equal(res.status, 202);
    for (let i = 0; i < 600; i++) {
      const doc = (await getJson(`${svc.url}/status/${String(res.body.task_id)}`)).body;
      if (doc.status === 'completed' || doc.status === 'failed') {
        assert.equal(doc.status, 'completed', String(doc.error));
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const plan = (await postJson(`${svc.url}/plan`, { video_filename: 'small.mp4' })).body as unknown as Plan;
    assert.equal(plan.estimate.basis, 'measured');
    assert.ok(
      plan.estimate.work_seconds > 0 && plan.estimate.work_seconds < 60,
      `${plan.estimate.work_seconds}`,
    );
  });
});
