import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { checkDashPackage, joinRepresentation } from '../helpers/package-check.js';

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
  const convert = async (input: string, env: Record<string, string> = {}, args: string[] = []) => {
    const out = path.join(dir, `${path.basename(input)}.out`);
    await run(
      process.execPath,
      [...cli, 'convert', input, '-o', out, '--preset', 'ultrafast', '--quiet', ...args],
      {
        env: { ...process.env, LADDER: '180:300k,360:700k', ...env },
      },
    );
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

  test("a browser's recording (MediaRecorder WebM, no duration written) converts for its whole length", async () => {
    // Written to a pipe, as a recorder streams it: Matroska then has no duration and no cues.
    const recording = path.join(dir, 'recording.webm');
    await run('sh', [
      '-c',
      'ffmpeg -v error -f lavfi -i testsrc2=size=320x240:rate=30:duration=3 ' +
        '-f lavfi -i sine=sample_rate=48000:duration=3 ' +
        '-c:v libvpx -deadline realtime -cpu-used 8 -c:a libopus -f webm - > "$1"',
      'sh',
      recording,
    ]);
    const { stdout } = await run('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'format=duration',
      '-of',
      'csv=p=0',
      recording,
    ]);
    assert.equal(stdout.trim(), 'N/A', 'the file states no duration');
    const pkg = await convert(recording);
    const mpd = await checkDashPackage(pkg, { heights: [180, 240], audio: true });
    assert.equal(mpd.duration, 3);
  });

  test('a raw H.264 stream (no container, no timestamps) converts', async () => {
    const raw = await make('camera.h264', [
      ...lavfiVideo('320x240', '25', 2),
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
    ]);
    const pkg = await convert(raw);
    const mpd = await checkDashPackage(pkg, { heights: [180, 240], audio: false });
    assert.equal(mpd.duration, 2);
  });

  test('with --audio first, of two audio tracks the one marked default is packaged (here the second; the first is silent)', async () => {
    const twoTracks = await make('two-tracks.mp4', [
      ...lavfiVideo('320x240', '30', 2),
      ...['-f', 'lavfi', '-i', 'anullsrc=sample_rate=48000:channel_layout=stereo:duration=2'],
      ...lavfiTone(2),
      ...['-map', '0', '-map', '1', '-map', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac'],
      ...['-disposition:a:0', '0', '-disposition:a:1', 'default'],
    ]);
    const pkg = await convert(twoTracks, {}, ['--audio', 'first']);
    const mpd = await checkDashPackage(pkg, { audio: true });
    const track = mpd.representations.find((r) => r.contentType === 'audio')!;
    const audio = await joinRepresentation(pkg, track, dir);
    const { stderr } = await run('ffmpeg', [
      '-hide_banner',
      '-i',
      audio,
      '-af',
      'volumedetect',
      '-f',
      'null',
      '-',
    ]);
    const mean = Number(/mean_volume: (-?[\d.]+) dB/.exec(stderr)?.[1]);
    assert.ok(mean > -40, `the packaged audio is the tone, not the silent track (mean volume ${mean} dB)`);
  });

  test("audio tagged with a language keeps it, as the manifests' default rendition", async () => {
    const french = await make('french.mp4', [
      ...lavfiVideo('320x240', '30', 2),
      ...lavfiTone(2),
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-metadata:s:a:0', 'language=fra'],
    ]);
    const pkg = await convert(french);
    await checkDashPackage(pkg, { audio: true });
    const mpd = await readFile(path.join(pkg, 'manifest.mpd'), 'utf8');
    const audioSet =
      /<AdaptationSet[^>]*contentType="audio"[^>]*>[\s\S]*?<\/AdaptationSet>/.exec(mpd)?.[0] ?? '';
    assert.match(audioSet, /lang="fr"/);
    assert.match(audioSet, /<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"\/>/);
    const master = await readFile(path.join(pkg, 'master.m3u8'), 'utf8');
    const rendition = master.split('\n').find((line) => line.startsWith('#EXT-X-MEDIA:TYPE=AUDIO')) ?? '';
    assert.match(rendition, /LANGUAGE="fr"/);
    assert.match(rendition, /DEFAULT=YES/);
  });

  test('a video that opens in black (a fifth of the way in too) gets a poster from its picture, not a black one', async () => {
    const darkOpening = await make('dark-opening.mp4', [
      ...['-f', 'lavfi', '-i', 'color=black:size=320x240:rate=30:duration=3'],
      ...lavfiVideo('320x240', '30', 5),
      ...lavfiTone(8),
      ...['-filter_complex', '[0][1]concat=n=2:v=1:a=0[v]', '-map', '[v]', '-map', '2'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac'],
    ]);
    const allBlack = await make('all-black.mp4', [
      ...['-f', 'lavfi', '-i', 'color=black:size=320x240:rate=30:duration=3'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'],
    ]);
    const brightness = async (pkg: string) => {
      const { stdout } = await run('ffmpeg', [
        ...['-v', 'error', '-i', path.join(pkg, 'poster.jpg')],
        ...['-vf', 'signalstats,metadata=print:file=-', '-f', 'null', '-'],
      ]);
      return Number(/lavfi\.signalstats\.YAVG=([\d.]+)/.exec(stdout)?.[1]);
    };
    const lit = await brightness(await convert(darkOpening));
    assert.ok(lit > 60, `the poster shows the picture (mean luma ${lit})`);
    const dark = await brightness(await convert(allBlack));
    assert.ok(
      dark < 20,
      `a video that is black throughout still gets its (black) poster (mean luma ${dark})`,
    );
  });

  test('of two video streams, the one marked default is packaged (here the larger, second one)', async () => {
    const twoVideos = await make('two-videos.mp4', [
      ...lavfiVideo('160x120', '30', 2),
      ...lavfiVideo('320x240', '30', 2),
      ...['-map', '0', '-map', '1', '-c:v', 'libx264', '-preset', 'ultrafast'],
      ...['-disposition:v:0', '0', '-disposition:v:1', 'default'],
    ]);
    const pkg = await convert(twoVideos);
    await checkDashPackage(pkg, { heights: [180, 240], audio: false });
  });
});
