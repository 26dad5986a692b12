import assert from 'node:assert/strict';
import { chmod, copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runProcess as run } from '../../src/process/run-process.js';
import { bundledPackagerPath } from '../../src/pipeline/tools.js';
import { generateClip } from '../helpers/media.js';
import { checkDashPackage, parseMpd } from '../helpers/package-check.js';
import { startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';
import { poll, processesMatching } from './procs.js';

/**
 * FFmpeg and Shaka Packager run side by side, joined by named pipes: when either fails the other must not
 * be left waiting on its pipe, and the reason must name the one at fault.
 */
describe('encoding and packaging at once', () => {
  let dir: string;
  let clip: string;
  const services: TestService[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-pair-'));
    clip = await generateClip({ width: 1280, height: 720, seconds: 12, audio: true });
  });
  after(async () => {
    for (const s of services) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A stand-in packager: answers `--version` as the real one does, and runs `body` for a packaging run. */
  const fakePackager = async (name: string, body: string) => {
    const file = path.join(dir, name);
    const real = bundledPackagerPath();
    await writeFile(file, `#!/bin/sh\ncase "$1" in --version) exec '${real}' "$@" ;; esac\n${body}\n`);
    await chmod(file, 0o755);
    return file;
  };

  test('a packager that fails before reading fails the task with its reason, and FFmpeg does not wait on its pipe', async () => {
    const packager = await fakePackager('failing-packager', 'echo "cannot write here" >&2\nexit 3');
    const svc = await startTestService({ PACKAGER_PATH: packager });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'a.mp4'));
    const started = Date.now();
    const id = await submit(svc.url, 'a.mp4');
    const { doc } = await waitForFinal(svc.url, id, 30_000);
    assert.equal(doc.status, 'failed');
    assert.equal(doc.error_code, 'package_failed');
    assert.equal(doc.error, 'Shaka Packager could not package the streams: cannot write here');
    assert.ok(Date.now() - started < 15_000, 'FFmpeg, blocked opening its pipe, was stopped at once');
    assert.deepEqual(await processesMatching(id), [], 'no FFmpeg of the task is left');
    assert.deepEqual(await readdir(path.join(svc.stateDir, 'work')), [], 'work directory removed');
    assert.deepEqual(await readdir(svc.outputDir), [], 'nothing published');
  });

  test('a packager that never reads its pipes: FFmpeg makes no progress, the watchdog stops both', async () => {
    const marker = `${2000 + (process.pid % 1000)}.${Date.now() % 100000}`;
    const packager = await fakePackager('deaf-packager', `exec sleep ${marker}`);
    const svc = await startTestService({ PACKAGER_PATH: packager, PROCESS_IDLE_TIMEOUT_SECONDS: '1' });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'b.mp4'));
    const id = await submit(svc.url, 'b.mp4');
    const { doc } = await waitForFinal(svc.url, id, 30_000);
    assert.equal(doc.status, 'failed');
    assert.equal(doc.error_code, 'timeout');
    assert.equal(doc.error, 'FFmpeg could not encode the input: ffmpeg made no progress for 1 s');
    const left = await poll(
      async () => ((await processesMatching(`sleep ${marker}`)).length ? undefined : true),
      5_000,
    );
    assert.ok(left, 'the packager was stopped with FFmpeg');
    assert.deepEqual(await readdir(path.join(svc.stateDir, 'work')), [], 'work directory removed');
  });

  test('audio stays in sync through the pipes: the AAC priming is hidden, so the audio lasts as long as the source', async () => {
    // Fragmented MP4 written without delay_moov carries no edit list: the encoder's 1,024 priming samples then
    // play as audio, 21 ms late against the video, and the packaged audio is a frame longer than the source's.
    const svc = await startTestService({ LADDER: '360:600k' });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'sync.mp4'));
    const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'sync.mp4'), 60_000);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    const mpd = parseMpd(await readFile(path.join(svc.outputDir, 'sync', 'manifest.mpd'), 'utf8'));
    const total = (kind: string) =>
      mpd.representations.find((r) => r.contentType === kind)!.durations.reduce((a, b) => a + b, 0);
    const { stdout } = await run('ffprobe', [
      ...[
        '-v',
        'error',
        '-select_streams',
        'a:0',
        '-show_entries',
        'stream=duration',
        '-of',
        'csv=p=0',
        clip,
      ],
    ]);
    const sourceAudio = Number(stdout.trim());
    const aacFrame = 1024 / 48_000;
    assert.ok(
      total('audio') >= sourceAudio - 1e-6 && total('audio') - sourceAudio < aacFrame,
      `packaged audio ${total('audio').toFixed(4)} s vs source ${sourceAudio.toFixed(4)} s`,
    );
    assert.ok(Math.abs(total('video') - 12) < 1 / 30 + 1e-6, `video ${total('video')} s`);
  });

  test('EARLY_MANIFEST: the lowest rung and the audio are playable before the task completes, then the full ladder', async () => {
    const svc = await startTestService({
      EARLY_MANIFEST: 'true',
      LADDER: '360:600k,720:2000k',
      // The second run (720p) has to take long enough for the early manifest to be seen on its own.
      X264_PRESET: 'medium',
    });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'c.mp4'));
    const id = await submit(svc.url, 'c.mp4');
    const manifestPath = path.join(svc.outputDir, 'c', 'manifest.mpd');
    const early = await poll(() => readFile(manifestPath, 'utf8').catch(() => ''), 60_000);
    assert.ok(early, 'a manifest was published');
    const statusThen = (await (await fetch(`${svc.url}/status/${id}`)).json()) as { status: string };
    const playableSeen = await poll(async () => {
      const d = (await (await fetch(`${svc.url}/status/${id}`)).json()) as {
        status: string;
        playable: boolean;
        early_output: Record<string, unknown>;
      };
      return d.playable ? d : undefined;
    }, 10_000);
    const earlyMpd = parseMpd(early);
    assert.deepEqual(
      earlyMpd.representations.map((r) => r.height ?? r.contentType),
      [360, 'audio'],
      'the first manifest lists the lowest rung and the audio',
    );
    assert.equal(statusThen.status, 'processing', 'and it came before the task completed');
    assert.ok(playableSeen, 'the status says the manifest plays');
    assert.deepEqual(
      playableSeen.early_output,
      {
        storage: 'local',
        prefix: 'c',
        manifest: { key: 'c/manifest.mpd' },
        hls_master: { key: 'c/master.m3u8' },
        renditions: [{ name: 'video_360p', codec: 'h264', width: 640, height: 360, bitrate: 600_000 }],
        audio: true,
      },
      'and where (the final keys of the manifests), and what plays',
    );
    await readFile(path.join(svc.outputDir, 'c', 'master.m3u8')); // the HLS playlist is there too, or this throws
    const earlyFiles = new Map<string, number>();
    for (const rep of earlyMpd.representations) {
      for (const file of [rep.init, ...rep.segments]) {
        // Every file it names is there, or this throws.
        earlyFiles.set(file, (await stat(path.join(svc.outputDir, 'c', file))).ino);
      }
    }

    const { doc } = await waitForFinal(svc.url, id, 120_000);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    assert.equal((doc as { playable?: boolean }).playable, true);
    assert.equal((doc as { early_output?: unknown }).early_output, null, 'once completed, output says where');
    const full = await checkDashPackage(path.join(svc.outputDir, 'c'), { heights: [360, 720], audio: true });
    const fullFiles = full.representations.flatMap((r) => [r.init, ...r.segments]);
    for (const [file, inode] of earlyFiles) {
      assert.ok(fullFiles.includes(file), `the full package names ${file} too`);
      const now = (await stat(path.join(svc.outputDir, 'c', file))).ino;
      assert.equal(now, inode, `${file} was published once, not replaced by the same bytes again`);
    }
  });

  test('EARLY_MANIFEST: an early package is removed when the task fails afterwards', async () => {
    // The second run is the only FFmpeg run without the audio output: it fails, the first run does not.
    const ffmpeg = path.join(dir, 'second-run-fails');
    await writeFile(
      ffmpeg,
      '#!/bin/sh\ncase " $* " in *" -progress "*) case " $* " in *audio.mp4*) ;; *) echo "second run broke" >&2; exit 1 ;; esac ;; esac\nexec ffmpeg "$@"\n',
    );
    await chmod(ffmpeg, 0o755);
    const svc = await startTestService({
      EARLY_MANIFEST: 'true',
      LADDER: '360:600k,720:2000k',
      FFMPEG_PATH: ffmpeg,
    });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'd.mp4'));
    const id = await submit(svc.url, 'd.mp4');
    const { doc } = await waitForFinal(svc.url, id, 60_000);
    assert.equal(doc.status, 'failed');
    // The second run starts only once the early package is published: this reason says it was.
    assert.equal(doc.error, 'FFmpeg could not encode the input: second run broke');
    const left = await readdir(svc.outputDir, { recursive: true });
    assert.deepEqual(
      left.filter((f) => /\.(mpd|m3u8|m4s|mp4)$/.test(f)),
      [],
      'nothing of the early package is left',
    );
  });
});
