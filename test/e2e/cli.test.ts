import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkDashPackage, joinRepresentation } from '../helpers/package-check.js';
import { rejectingXmllint } from '../helpers/rejecting-xmllint.js';
import { generateClip, makeHdrClip, makeLosslessPattern, makeSizeChangingClip } from '../helpers/media.js';

const run = promisify(execFile);
const cli = ['--import', 'tsx', 'src/cli/main.ts'];

describe('dash-video-converter convert', () => {
  test('converts a local file into a directory, without server or queue', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      const clip = await generateClip({ width: 1280, height: 720, seconds: 4, audio: true });
      const { stdout } = await run(process.execPath, [
        ...cli,
        'convert',
        clip,
        '-o',
        out,
        '--preset',
        'ultrafast',
        '--quiet',
      ]);
      assert.match(stdout, /video_720p: 1280x720/);
      await checkDashPackage(out, { heights: [360, 720], audio: true });
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  test("--report writes the status document's report with QC; the verdict is printed in one line", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      const clip = await generateClip({ width: 640, height: 360, seconds: 2, audio: true });
      const report = path.join(dir, 'r.json');
      const { stdout } = await run(process.execPath, [
        ...cli,
        ...['convert', clip, '-o', path.join(dir, 'out'), '--preset', 'ultrafast', '-q', '--report', report],
      ]);
      assert.match(stdout, /^QC: passed \(8 checks\)$/m);
      const r = JSON.parse(await readFile(report, 'utf8')) as {
        qc: { passed: boolean; checks: unknown[] };
        timings: Record<string, number>;
        renditions: { name: string }[];
        duration: number;
        files: number;
        bytes: number;
        encode_speed: number;
        manifest: { key: string };
      };
      assert.equal(r.qc.passed, true);
      assert.equal(r.qc.checks.length, 8);
      assert.equal(typeof r.timings.total, 'number');
      assert.ok(r.timings.total! > 0 && r.timings.encode! > 0, JSON.stringify(r.timings));
      assert.deepEqual(
        r.renditions.map((x) => x.name),
        ['video_360p'],
      );
      assert.ok(Math.abs(r.duration - 2) < 0.1, `duration ${r.duration}`);
      assert.equal(r.files, (await listFiles(path.join(dir, 'out'))).length);
      assert.ok(r.bytes > 10_000 && r.encode_speed > 0);
      assert.equal(r.manifest.key, path.join(dir, 'out', 'manifest.mpd'));
      assert.ok(existsSync(r.manifest.key));

      // A report whose directory does not exist is refused before any work.
      await assert.rejects(
        run(process.execPath, [
          ...cli,
          ...[
            'convert',
            clip,
            '-o',
            path.join(dir, 'out2'),
            '-q',
            '--report',
            path.join(dir, 'no', 'r.json'),
          ],
        ]),
        (err: { code: number; stderr: string }) => {
          assert.equal(err.code, 2);
          assert.match(err.stderr, /--report .*its directory does not exist/);
          return true;
        },
      );
      assert.equal(existsSync(path.join(dir, 'out2')), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('QC_MODE=enforce: a package failing its check exits 1 saying why, and leaves nothing; warn keeps it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      const xmllint = await rejectingXmllint(dir);
      const clip = await generateClip({ width: 640, height: 360, seconds: 2, audio: false });
      const out = path.join(dir, 'out');
      await mkdir(out);
      const report = path.join(dir, 'r.json');
      const args = [...cli, 'convert', clip, '-o', out, '--preset', 'ultrafast', '-q', '--report', report];
      await assert.rejects(
        run(process.execPath, args, { env: { ...process.env, XMLLINT_PATH: xmllint, QC_MODE: 'enforce' } }),
        (err: { code: number; stderr: string }) => {
          assert.equal(err.code, 1, err.stderr);
          assert.match(err.stderr, /^QC: failed — mpd_schema: .*injected by the test/m);
          assert.match(err.stderr, /conversion failed: the package failed its quality checks/);
          return true;
        },
      );
      assert.deepEqual(await readdir(out), [], 'nothing in the output directory');
      assert.equal(existsSync(report), false, 'no report');

      const { stdout } = await run(process.execPath, args, {
        env: { ...process.env, XMLLINT_PATH: xmllint, QC_MODE: 'warn' },
      });
      assert.match(stdout, /^QC: failed — mpd_schema: .*QC_MODE=warn/m);
      const r = JSON.parse(await readFile(report, 'utf8')) as { qc: { passed: boolean } };
      assert.equal(r.qc.passed, false);
      await checkDashPackage(out, { heights: [360], audio: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an output that cannot take the package is refused before any work; --force replaces it', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    const convert = (input: string, dir: string, ...more: string[]) =>
      run(process.execPath, [
        ...cli,
        'convert',
        input,
        '-o',
        dir,
        '--preset',
        'ultrafast',
        '-q',
        ...more,
      ]).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
      );
    try {
      const clip = await generateClip({ width: 640, height: 360, seconds: 2, audio: false });
      // An earlier conversion's package (here with a 720p rung and an HLS master) and a file of the user's.
      const old = path.join(out, 'old');
      await mkdir(path.join(old, 'video_720p'), { recursive: true });
      await writeFile(path.join(old, 'video_720p', '1.m4s'), 'earlier');
      await writeFile(path.join(old, 'master.m3u8'), '#EXTM3U');
      const started = Date.now();
      const occupied = await convert(clip, old);
      assert.equal(occupied.code, 2);
      assert.match(occupied.stderr, /not empty: .*--force/);
      assert.ok(Date.now() - started < 10_000, 'refused at once, not after the conversion');
      assert.equal(await readFile(path.join(old, 'master.m3u8'), 'utf8'), '#EXTM3U', 'nothing touched');

      const file = path.join(out, 'a-file');
      await writeFile(file, 'x');
      const notDir = await convert(clip, file);
      assert.equal(notDir.code, 2);
      assert.match(notDir.stderr, /a file is in the way: not a directory/);

      const missing = await convert(path.join(out, 'no-such.mp4'), path.join(out, 'new'));
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no-such\.mp4: no such file/);

      // Never a directory that holds the input (or the working directory, or a home).
      const beside = path.join(old, 'mine.mp4');
      await copyFile(clip, beside);
      const holdsInput = await convert(beside, old, '--force');
      assert.equal(holdsInput.code, 2);
      assert.match(holdsInput.stderr, /holds the input: --force would delete it/);
      assert.ok(existsSync(beside));
      await rm(beside);
      // Nor the one its working files go to (the package is made there).
      const holdsWork = await run(process.execPath, [...cli, 'convert', clip, '-o', old, '--force', '-q'], {
        env: { ...process.env, WORK_DIR: path.join(old, 'work') },
      }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
      );
      assert.equal(holdsWork.code, 2);
      assert.match(holdsWork.stderr, /holds the temporary directory: --force would delete it/);
      const forced = await convert(clip, old, '--force', '--formats', 'dash');
      assert.equal(forced.code, 0, forced.stderr);
      await checkDashPackage(old, { heights: [360], audio: false });
      assert.deepEqual((await readdir(old)).sort(), [
        'manifest.mpd',
        'poster.jpg',
        'thumbnails',
        'thumbnails.vtt',
        'video_360p',
      ]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  test('Ctrl-C stops the conversion: exit 130 (SIGTERM 143), nothing written or left behind', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    const work = await mkdtemp(path.join(tmpdir(), 'dvc-cli-tmp-'));
    try {
      const clip = await generateClip({ width: 1280, height: 720, seconds: 30, audio: true });
      // Its work directory in WORK_DIR, when set (the system's temporary directory otherwise).
      const child = spawn(process.execPath, [...cli, 'convert', clip, '-o', path.join(out, 'pkg'), '-q'], {
        env: { ...process.env, WORK_DIR: work },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // Interrupted once its work directory exists and FFmpeg has had a moment.
      // (tsx keeps a cache of its own in a TMPDIR.)
      const ours = async () => (await readdir(work)).filter((f) => f.startsWith('dvc-convert-'));
      for (let i = 0; i < 200 && (await ours()).length === 0; i++) await sleep(50);
      assert.equal((await ours()).length, 1, 'the work directory is in WORK_DIR');
      await sleep(1500);
      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.equal(code, 130, stderr);
      assert.match(stderr, /interrupted/);
      assert.deepEqual(await readdir(out), [], 'no package');
      assert.deepEqual(await ours(), [], 'no work directory');

      // With EARLY_MANIFEST, stopped (SIGTERM) after the early package is in place: it goes too.
      const pkg = path.join(out, 'early');
      const early = spawn(process.execPath, [...cli, 'convert', clip, '-o', pkg, '-q'], {
        env: { ...process.env, TMPDIR: work, EARLY_MANIFEST: 'true', LADDER: '180:200k,720:2000k' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let earlyErr = '';
      early.stderr.on('data', (d: Buffer) => (earlyErr += d.toString()));
      const exited = new Promise<number | null>((resolve) => early.on('exit', resolve));
      for (let i = 0; i < 600 && !existsSync(path.join(pkg, 'manifest.mpd')); i++) await sleep(50);
      assert.ok(existsSync(path.join(pkg, 'manifest.mpd')), 'the early package was published');
      early.kill('SIGTERM');
      assert.equal(await exited, 143, earlyErr);
      assert.equal(existsSync(pkg), false, 'what the run wrote is gone');
    } finally {
      await rm(out, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
    }
  });

  test('--help on every command prints the usage with every convert option and exits 0', async () => {
    for (const args of [
      ['serve', '--help'],
      ['worker', '-h'],
      ['convert', '--help'],
    ]) {
      const { stdout } = await run(process.execPath, [...cli, ...args]);
      for (const option of [
        'serve [--no-worker]',
        '--ladder',
        '--formats',
        '--segment-duration',
        '--preset',
        '--no-thumbnails',
        '--report',
        '-q',
      ]) {
        assert.ok(stdout.includes(option), `${args.join(' ')}: ${option}`);
      }
    }
    await assert.rejects(
      run(process.execPath, [...cli, 'convert']),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr, /--segment-duration/);
        return true;
      },
    );
  });

  test('serve refuses to start with the setting to change: a directory that is a file, a port in use', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    const taken = createServer();
    try {
      await writeFile(path.join(dir, 'afile'), '');
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = String((taken.address() as { port: number }).port);
      const cases: [Record<string, string>, RegExp][] = [
        [{ STATE_DIR: path.join(dir, 'afile') }, /STATE_DIR=.*afile: a file is in the way of the directory/],
        [
          { STATE_DIR: path.join(dir, 'state'), INPUT_DIR: path.join(dir, 'afile') },
          /INPUT_DIR=.*afile: a file is in the way/,
        ],
        [
          { STATE_DIR: path.join(dir, 'state'), PORT: port },
          new RegExp(`PORT=${port}: the address is in use`),
        ],
      ];
      for (const [env, reason] of cases) {
        await assert.rejects(
          run(process.execPath, [...cli, 'serve'], {
            env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'error', ...env },
          }),
          (err: { code: number; stderr: string }) => {
            assert.equal(err.code, 78, err.stderr);
            assert.match(err.stderr, reason);
            return true;
          },
        );
      }
    } finally {
      taken.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a file that is not a video exits 1 with the reason', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      const bad = path.join(dir, 'bad.mp4');
      await writeFile(bad, 'hello');
      await assert.rejects(
        run(process.execPath, [...cli, 'convert', bad, '-o', path.join(dir, 'out'), '--quiet']),
        (err: { code: number; stderr: string }) => {
          assert.equal(err.code, 1);
          assert.match(err.stderr, /conversion failed: the input is not a readable media file/);
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const [setting, tool, hint] of [
    ['FFMPEG_PATH', 'ffmpeg', /apt-get install ffmpeg/],
    ['PACKAGER_PATH', 'packager', /npm ci/],
  ] as const) {
    test(`a missing ${tool} exits 1 saying which program and how to install it`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
      try {
        const clip = await generateClip({ width: 640, height: 360, seconds: 2, audio: true });
        const env = { ...process.env, [setting]: path.join(dir, 'not-installed') };
        await assert.rejects(
          run(process.execPath, [...cli, 'convert', clip, '-o', path.join(dir, 'out'), '--quiet'], { env }),
          (err: { code: number; stderr: string }) => {
            assert.equal(err.code, 1);
            assert.match(err.stderr, new RegExp(`${tool} not usable at`));
            assert.match(err.stderr, hint);
            return true;
          },
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  test('an odd-sized picture converts: libswscale resizes what zimg refuses', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      // VP9 keeps an odd 4:2:0 size (MPEG-4 Part 2 and FFmpeg's crop would round it to even).
      const odd = path.join(dir, 'odd.webm');
      await run('ffmpeg', [
        ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=641x361:rate=25:duration=2'],
        ...['-pix_fmt', 'yuv420p', '-c:v', 'libvpx-vp9', '-deadline', 'realtime', odd],
      ]);
      const { stdout: size } = await run('ffprobe', [
        ...['-v', 'error', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', odd],
      ]);
      assert.equal(size.trim(), '641,361', 'the source is odd-sized');
      const out = path.join(dir, 'out');
      const { stdout } = await run(process.execPath, [...cli, 'convert', odd, '-o', out, '--quiet']);
      assert.match(stdout, /video_360p: 640x360/);
      await checkDashPackage(out, { heights: [360], audio: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a picture that turns odd-sized midway converts (a WebRTC recording switching layers)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      // One stream whose size changes twice. The plan is made from the first size (even: zimg), and FFmpeg
      // rebuilds the graph at each change.
      const clip = await makeSizeChangingClip(
        dir,
        ['480x270', '241x135', '480x270'],
        path.join(dir, 'switching.webm'),
      );
      const { stdout: sizes } = await run('ffprobe', [
        ...[
          '-v',
          'error',
          '-select_streams',
          'v',
          '-show_entries',
          'frame=width,height',
          '-of',
          'csv=p=0',
          clip,
        ],
      ]);
      assert.ok(sizes.includes('241,135'), 'the clip has odd-sized frames');

      const out = path.join(dir, 'out');
      const { stdout } = await run(process.execPath, [...cli, 'convert', clip, '-o', out, '--quiet']);
      assert.match(stdout, /video_270p: 480x270/);
      await checkDashPackage(out, { heights: [270], audio: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a stream that turns portrait midway is pillarboxed into the landscape rungs, not stretched', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      // A WebRTC recording of a phone turned sideways and back.
      const clip = await makeSizeChangingClip(
        dir,
        ['640x360', '360x640', '640x360'],
        path.join(dir, 'turning.webm'),
      );

      const out = path.join(dir, 'out');
      const { stdout } = await run(process.execPath, [...cli, 'convert', clip, '-o', out, '--quiet']);
      assert.match(stdout, /video_360p: 640x360/);
      const mpd = await checkDashPackage(out, { heights: [360], audio: false });
      const joined = await joinRepresentation(out, mpd.representations[0]!, dir);
      // A frame of the portrait part: its left 100 columns are the black bar (luma 16), where the stretched
      // pattern would show its white and coloured bars.
      const { stderr } = await run('ffmpeg', [
        ...['-ss', '1.5', '-i', joined, '-frames:v', '1'],
        ...['-vf', 'crop=100:360:0:0,signalstats,metadata=print', '-f', 'null', '-'],
      ]);
      const yavg = Number(/lavfi\.signalstats\.YAVG=([\d.]+)/.exec(stderr)?.[1]);
      assert.ok(yavg < 20, `left edge of a portrait frame: average luma ${yavg}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an interlaced source comes out progressive: no combing left for FFmpeg's idet to find", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      // Real interlacing: 50 pictures a second of motion woven two by two into 25 interlaced frames (top field
      // first), coded as interlaced H.264, at the size of the 360p rung, so that no resize blurs the combs.
      const clip = path.join(dir, 'interlaced.mp4');
      await run('ffmpeg', [
        ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=50:duration=3'],
        ...['-vf', 'tinterlace=mode=interleave_top,setfield=tff', '-c:v', 'libx264', '-preset', 'ultrafast'],
        ...['-flags', '+ildct+ilme', '-x264-params', 'tff=1', clip],
      ]);
      const combed = async (file: string) => {
        const { stderr } = await run('ffmpeg', ['-nostdin', '-i', file, '-vf', 'idet', '-f', 'null', '-']);
        const m = /Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)/.exec(stderr);
        assert.ok(m, 'idet reports its counts');
        const [tff, bff, progressive] = m.slice(1).map(Number) as [number, number, number];
        return (tff + bff) / (tff + bff + progressive);
      };
      assert.ok((await combed(clip)) > 0.8, 'idet finds the source interlaced');

      const out = path.join(dir, 'out');
      await run(process.execPath, [...cli, 'convert', clip, '-o', out, '--quiet']);
      const mpd = await checkDashPackage(out, { heights: [360], audio: false });
      const rung = mpd.representations.find((r) => r.contentType === 'video')!;
      const joined = await joinRepresentation(out, rung, dir);
      const share = await combed(joined);
      assert.ok(share < 0.1, `the rung is progressive: idet finds ${Math.round(share * 100)} % combed`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an HDR source (10-bit HEVC, PQ) comes out tone-mapped: SDR BT.709 rungs, close to the SDR picture', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      // An SDR pattern (kept losslessly) taken to PQ and BT.2020 by zimg and coded as an HDR10 master or a phone
      // would: 10-bit HEVC whose stream says PQ, BT.2020. Tone-mapped well, the rungs come back near the SDR.
      const sdr = await makeLosslessPattern(path.join(dir, 'sdr.mkv'), 1280, 720, 2);
      const clip = await makeHdrClip(sdr, path.join(dir, 'hdr10.mp4'), 'smpte2084');
      const colours = async (file: string) => {
        const { stdout } = await run('ffprobe', [
          ...['-v', 'error', '-select_streams', 'v:0', '-of', 'json'],
          ...['-show_entries', 'stream=pix_fmt,color_transfer,color_primaries,color_space', file],
        ]);
        return (JSON.parse(stdout) as { streams: Record<string, string>[] }).streams[0]!;
      };
      assert.equal((await colours(clip)).color_transfer, 'smpte2084', 'the source says PQ');

      const out = path.join(dir, 'out');
      await run(process.execPath, [...cli, 'convert', clip, '-o', out, '--quiet']);
      const mpd = await checkDashPackage(out, { heights: [360, 720], audio: false });
      for (const rung of mpd.representations.filter((r) => r.contentType === 'video')) {
        const joined = await joinRepresentation(out, rung, dir);
        const c = await colours(joined);
        assert.deepEqual(
          [c.pix_fmt, c.color_transfer, c.color_primaries, c.color_space],
          ['yuv420p', 'bt709', 'bt709', 'bt709'],
          `${rung.id}: SDR BT.709`,
        );
        if (rung.height !== 720) continue;
        // The PQ signal shown as it is comes within 14 dB of the SDR picture; Hable's curve within 16.
        const { stderr } = await run('ffmpeg', [
          ...['-i', joined, '-i', sdr, '-lavfi', '[0:v][1:v]psnr', '-f', 'null', '-'],
        ]);
        const psnr = Number(/PSNR .* average:([\d.]+)/.exec(stderr)?.[1]);
        assert.ok(psnr > 22, `720p against the SDR original: ${psnr} dB`);
      }
      // The poster is tone-mapped too: the pattern's white is near SDR white (the PQ signal as it is: 122).
      const { stderr } = await run('ffmpeg', [
        ...['-i', path.join(out, 'poster.jpg'), '-vf', 'format=gray,signalstats,metadata=print'],
        ...['-f', 'null', '-'],
      ]);
      const ymax = Number(/lavfi\.signalstats\.YMAX=(\d+)/.exec(stderr)?.[1]);
      assert.ok(ymax > 170, `poster's brightest luma ${ymax}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an FFmpeg built without zimg: the conversion says so and how to go on; SCALER=swscale converts', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-cli-'));
    try {
      // FFmpeg as built without libzimg: no zscale filter, no --enable-libzimg in its configuration.
      const ffmpeg = path.join(dir, 'ffmpeg-without-zimg');
      await writeFile(
        ffmpeg,
        '#!/bin/sh\ncase " $* " in *zscale*) echo "No such filter: \'zscale\'" >&2; exit 1 ;; esac\n' +
          'exec ffmpeg "$@"\n',
      );
      await chmod(ffmpeg, 0o755);
      const clip = await generateClip({ width: 1280, height: 720, seconds: 2, audio: true });
      const args = [...cli, 'convert', clip, '-o', path.join(dir, 'out'), '--preset', 'ultrafast', '--quiet'];
      const env = { ...process.env, FFMPEG_PATH: ffmpeg };
      await assert.rejects(run(process.execPath, args, { env }), (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /built without libzimg/);
        assert.match(err.stderr, /SCALER=swscale/);
        return true;
      });
      await run(process.execPath, args, { env: { ...env, SCALER: 'swscale' } });
      await checkDashPackage(path.join(dir, 'out'), { heights: [360, 720], audio: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a bad setting exits 78 naming it', async () => {
    await assert.rejects(
      run(process.execPath, [...cli, 'serve'], { env: { ...process.env, PORT: 'x' } }),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 78);
        assert.match(err.stderr, /PORT=x must be a whole number/);
        return true;
      },
    );
  });
});

/** Every file below `dir`, by its path relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}
