import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { checkDashPackage } from '../helpers/package-check.js';

const run = promisify(execFile);
const cli = ['--import', 'tsx', 'src/cli/main.ts'];

/**
 * Uploads that are unusual but legitimate (a broadcast capture, a podcast's still picture, a browser's
 * recording): each converts into a package that validates, with what a player needs.
 */
describe('unusual but legitimate inputs convert', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-unusual-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Makes `name` in the test directory with FFmpeg from `args` (inputs and codecs). */
  const make = async (name: string, args: string[]) => {
    const file = path.join(dir, name);
    await run('ffmpeg', ['-v', 'error', '-y', ...args, file]);
    return file;
  };
  /** Converts with the CLI into a directory of its own; resolves to that directory. */
  const convert = async (input: string, env: Record<string, string> = {}) => {
    const out = path.join(dir, `${path.basename(input)}.out`);
    await run(process.execPath, [...cli, 'convert', input, '-o', out, '--preset', 'ultrafast', '--quiet'], {
      env: { ...process.env, LADDER: '180:300k,360:700k', ...env },
    });
    return out;
  };
  const lavfiVideo = (size: string, rate: string, seconds: number) => [
    ...['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}:duration=${seconds}`],
  ];
  const lavfiTone = (seconds: number, frequency = 440) => [
    ...['-f', 'lavfi', '-i', `sine=frequency=${frequency}:sample_rate=48000:duration=${seconds}`],
  ];
  const audioCodec = async (pkg: string) => {
    const mpd = await readFile(path.join(pkg, 'manifest.mpd'), 'utf8');
    return /<Representation[^>]*codecs="(mp4a[^"]*)"/.exec(mpd)?.[1];
  };

  test('MPEG-TS with AAC audio (a broadcast or OBS capture): the AAC is copied into MP4', async () => {
    const ts = await make('capture.ts', [
      ...lavfiVideo('320x240', '30', 3),
      ...lavfiTone(3),
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-b:a', '128k', '-f', 'mpegts'],
    ]);
    const pkg = await convert(ts);
    await checkDashPackage(pkg, { heights: [180, 240], audio: true });
    assert.equal(await audioCodec(pkg), 'mp4a.40.2');
  });

  test('a still picture over audio (a podcast upload): one frame converts, with a poster', async () => {
    const still = await make('cover.png', [...lavfiVideo('640x360', '1', 1), '-frames:v', '1']);
    const podcast = await make('podcast.mp4', [
      ...['-i', still],
      ...lavfiTone(4),
      ...['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac'],
    ]);
    const pkg = await convert(podcast);
    await checkDashPackage(pkg, { audio: true });
    const poster = await readFile(path.join(pkg, 'poster.jpg'));
    assert.ok(poster.length > 1000 && poster[0] === 0xff && poster[1] === 0xd8, 'a JPEG poster');
  });

  test('half a frame per second (a slide recording): converts, with a poster', async () => {
    const slides = await make('slides.mp4', [
      ...lavfiVideo('320x240', '1/2', 4),
      ...lavfiTone(4),
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac'],
    ]);
    const pkg = await convert(slides);
    await checkDashPackage(pkg, { heights: [180, 240], audio: true });
    assert.ok((await readFile(path.join(pkg, 'poster.jpg'))).length > 1000);
  });
});
