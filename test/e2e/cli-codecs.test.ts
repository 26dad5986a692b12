import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { checkDashPackage } from '../helpers/package-check.js';
import { generateClip } from '../helpers/media.js';

const run = promisify(execFile);
const cli = ['--import', 'tsx', 'src/cli/main.ts'];

describe('convert --codecs', () => {
  test('h264,hevc: both ladders in one package, HEVC tagged hvc1 in the MPD and the HLS master, every rung decodes whole', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-codecs-'));
    try {
      const clip = await generateClip({ width: 256, height: 144, seconds: 2, audio: true, fps: 24 });
      const out = path.join(dir, 'out');
      const report = path.join(dir, 'r.json');
      const { stdout } = await run(process.execPath, [
        ...cli,
        ...['convert', clip, '-o', out, '--codecs', 'h264,hevc', '--ladder', '72:150k,144:300k'],
        ...['--segment-duration', '1', '-q', '--report', report],
      ]);
      assert.match(stdout, /video_hevc_144p: 256x144 @ 210 kbit\/s/, 'HEVC at 0.7 of the rung');
      assert.match(stdout, /^QC: passed/m);
      const r = JSON.parse(await readFile(report, 'utf8')) as {
        renditions: { codec: string; height: number }[];
      };
      assert.deepEqual(
        r.renditions.map((x) => `${x.codec} ${x.height}`),
        ['h264 72', 'hevc 72', 'h264 144', 'hevc 144'],
      );
      await checkDashPackage(out, { heights: [72, 72, 144, 144], audio: true, segmentDuration: 1 });
      const mpd = await readFile(path.join(out, 'manifest.mpd'), 'utf8');
      assert.match(mpd, /codecs="hvc1\./);
      assert.match(await readFile(path.join(out, 'master.m3u8'), 'utf8'), /CODECS="hvc1\.[^"]*,mp4a/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an unknown codec is refused before any work, naming the choices', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-codecs-'));
    try {
      const clip = await generateClip({ width: 256, height: 144, seconds: 2, audio: true, fps: 24 });
      await assert.rejects(
        run(process.execPath, [...cli, 'convert', clip, '-o', path.join(dir, 'out'), '--codecs', 'h264,av2']),
        (err: { code: number; stderr: string }) => {
          assert.equal(err.code, 78);
          assert.match(err.stderr, /VIDEO_CODECS=h264,av2 must list codecs among h264, av1, vp9, hevc/);
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
