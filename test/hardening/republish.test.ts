import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { checkDashPackage, parseMpd } from '../helpers/package-check.js';
import { createLogger } from '../../src/process/logger.js';
import { listFiles } from '../../src/pipeline/package.js';
import { LocalStorage } from '../../src/storage/local-storage.js';
import { PackagePublisher } from '../../src/jobs/publish.js';
import { withdrawAbandoned } from '../../src/jobs/process-task.js';
import { loadConfig } from '../../src/config/config.js';
import type { TaskRecord } from '../../src/domain/task.js';
import { startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';

/** Every file below `dir` with its bytes, by relative path. */
async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const f of await listFiles(dir)) files.set(f, await readFile(path.join(dir, f)));
  return files;
}

/**
 * A video is converted again to the same place (a new ladder, a fixed source): players and caches holding the
 * first package must not be handed segments of the second, and a second conversion that fails must leave the
 * first package as it was.
 */
describe('a package published again at the same prefix', () => {
  let dir: string;
  let clip: string;
  const services: TestService[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-republish-'));
    clip = await generateClip({ width: 640, height: 360, seconds: 6, audio: true });
  });
  after(async () => {
    for (const s of services) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the second package gets media of its own: the first one’s segments stay as they were', async () => {
    const svc = await startTestService({ LADDER: '180:300k,360:700k', X264_PRESET: 'ultrafast' });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'v.mp4'));
    const { doc: first } = await waitForFinal(svc.url, await submit(svc.url, 'v.mp4'));
    assert.equal(first.status, 'completed', first.error ?? '');
    const firstMedia = first.output!.media_prefix!;
    assert.match(firstMedia, new RegExp(`^v/${first.task_id}-1-[0-9a-f]{6}$`));
    const firstFiles = await snapshot(path.join(svc.outputDir, firstMedia));
    assert.ok([...firstFiles.keys()].some((f) => f.endsWith('.m4s')));

    const { doc: second } = await waitForFinal(
      svc.url,
      await submit(svc.url, 'v.mp4', { segment_duration: 2, ladder: [{ height: 360, bitrate: 700_000 }] }),
    );
    assert.equal(second.status, 'completed', second.error ?? '');
    const secondMedia = second.output!.media_prefix!;
    assert.notEqual(secondMedia, firstMedia);

    assert.deepEqual(
      await snapshot(path.join(svc.outputDir, firstMedia)),
      firstFiles,
      "the first package's media, byte for byte",
    );
    const pkg = path.join(svc.outputDir, 'v');
    const mpd = await checkDashPackage(pkg, { heights: [360], audio: true, segmentDuration: 2 });
    const referenced = mpd.representations.flatMap((r) => [r.init, ...r.segments]);
    const below = `${secondMedia.slice('v/'.length)}/`;
    assert.ok(
      referenced.every((f) => f.startsWith(below)),
      `the manifest names the second package's media only: ${referenced.join(' ')}`,
    );
    const master = await readFile(path.join(pkg, 'master.m3u8'), 'utf8');
    assert.ok(master.includes(`${below}video_360p/playlist.m3u8`), master);
  });

  test('a package made again with fewer formats removes the manifest the earlier one left', async () => {
    const svc = await startTestService({ LADDER: '180:300k', X264_PRESET: 'ultrafast' });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'f.mp4'));
    const { doc: first } = await waitForFinal(svc.url, await submit(svc.url, 'f.mp4'));
    assert.equal(first.status, 'completed', first.error ?? '');
    const pkg = path.join(svc.outputDir, 'f');
    await readFile(path.join(pkg, 'manifest.mpd')); // there, or this throws

    const { doc: second } = await waitForFinal(svc.url, await submit(svc.url, 'f.mp4', { formats: ['hls'] }));
    assert.equal(second.status, 'completed', second.error ?? '');
    assert.equal(second.output!.manifest, undefined);
    await assert.rejects(
      readFile(path.join(pkg, 'manifest.mpd')),
      /ENOENT/,
      'no MPD of the first package is left',
    );
    const master = await readFile(path.join(pkg, 'master.m3u8'), 'utf8');
    assert.ok(master.includes(second.output!.media_prefix!.slice('f/'.length)), 'the master is the second');
  });

  test('a conversion that fails after its early package was published puts the previous package back', async () => {
    // The second FFmpeg run of an EARLY_MANIFEST task (the only run without the audio output) fails.
    const ffmpeg = path.join(dir, 'second-run-fails');
    await writeFile(
      ffmpeg,
      '#!/bin/sh\ncase " $* " in *" -progress "*) case " $* " in *audio.mp4*) ;; *) echo "second run broke" >&2; exit 1 ;; esac ;; esac\nexec ffmpeg "$@"\n',
    );
    await chmod(ffmpeg, 0o755);
    const svc = await startTestService({
      EARLY_MANIFEST: 'true',
      LADDER: '180:300k,360:700k',
      X264_PRESET: 'ultrafast',
      FFMPEG_PATH: ffmpeg,
    });
    services.push(svc);
    await copyFile(clip, path.join(svc.inputDir, 'w.mp4'));
    // One rung: a single run, which has the audio output, so it succeeds.
    const { doc: first } = await waitForFinal(
      svc.url,
      await submit(svc.url, 'w.mp4', { ladder: [{ height: 360, bitrate: 700_000 }] }),
    );
    assert.equal(first.status, 'completed', first.error ?? '');
    const pkg = path.join(svc.outputDir, 'w');
    const published = await snapshot(pkg);

    const id = await submit(svc.url, 'w.mp4');
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'failed');
    // The second run starts only once the early package is published: this reason says it was.
    assert.equal(doc.error, 'FFmpeg could not encode the input: second run broke');
    assert.deepEqual(
      await snapshot(pkg),
      published,
      'the output is what the first task published, byte for byte',
    );
    const mpd = parseMpd(await readFile(path.join(pkg, 'manifest.mpd'), 'utf8'));
    assert.deepEqual(
      mpd.representations.map((r) => r.height ?? r.contentType),
      [360, 'audio'],
    );
    await checkDashPackage(pkg, { heights: [360], audio: true });
  });
});

describe('local output that cannot be written', () => {
  test('a file where the prefix needs a directory fails the task at once, saying where, not as an internal error', async () => {
    const clip = await generateClip({ width: 320, height: 240, seconds: 2, audio: false });
    const svc = await startTestService({ LADDER: '180:300k', X264_PRESET: 'ultrafast' });
    try {
      await copyFile(clip, path.join(svc.inputDir, 'b.mp4'));
      await writeFile(path.join(svc.outputDir, 'blocker'), 'in the way');
      const { doc } = await waitForFinal(
        svc.url,
        await submit(svc.url, 'b.mp4', { output_prefix: 'blocker/sub' }),
      );
      assert.equal(doc.status, 'failed');
      assert.equal(doc.error_code, 'storage_denied');
      assert.match(
        doc.error ?? '',
        /^the output cannot be written at blocker\/sub\/[^ ]+: a file stands where the key needs a directory$/,
      );
      assert.ok(!(doc.error ?? '').includes(svc.outputDir), 'no server path in the reason');
      assert.equal((doc as unknown as { attempts: number }).attempts, 1, 'not retried');
    } finally {
      await svc.close();
    }
  });
});

/**
 * A task's run can die (SIGKILL, a lost host) after publishing part of a package: an early package, or some
 * of the top-level files. What was there before the task must survive that run's death, for the task's next
 * run to put back if it fails in turn; a run that lost its lease must not take back what the run that took
 * the task over published.
 */
describe('publishing across runs of one task', () => {
  let root: string;
  const task = '6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f';
  const files = async (dir: string, entries: Record<string, string>) => {
    for (const [name, text] of Object.entries(entries)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), text);
    }
    return dir;
  };
  const publisher = (storage: LocalStorage, attempt: number) =>
    new PackagePublisher(storage, 'v', path.join(root, `work-${attempt}`, 'replaced'), {
      concurrency: 2,
      cacheControl: { segments: 'max-age=1', manifests: 'no-cache' },
      logger: createLogger('silent'),
      taskId: task,
      attempt,
      earlierMedia: Array.from({ length: attempt - 1 }, (_, i) => `${task}-${i + 1}-`),
    });
  const read = (file: string) => readFile(path.join(root, 'out', 'v', file), 'utf8');
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-runs-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('a run that fails after an earlier one died puts back what was there before the task', async () => {
    const out = path.join(root, 'out');
    const storage = new LocalStorage(out);
    // What an earlier task published there.
    await files(path.join(out, 'v'), {
      'manifest.mpd': 'earlier task: other-1-aa/video_360p',
      'other-1-aa/video_360p/1.m4s': 'earlier media',
    });
    // Run 1 publishes its early package, then its process dies: no withdraw.
    const early = await files(path.join(root, 'early'), {
      'manifest.mpd': `run 1: ${task}-1-bb/video_360p`,
      'master.m3u8': `run 1: ${task}-1-bb/video_360p/playlist.m3u8`,
      [`${task}-1-bb/video_360p/1.m4s`]: 'run 1 media',
    });
    await publisher(storage, 1).publish(early, [
      'manifest.mpd',
      'master.m3u8',
      `${task}-1-bb/video_360p/1.m4s`,
    ]);
    assert.match(await read('manifest.mpd'), /^run 1/);
    // Run 2, on another worker (run 1's work directory, where it kept its copies, is gone), fails.
    await rm(path.join(root, 'work-1'), { recursive: true });
    await publisher(storage, 2).withdraw();
    assert.equal(await read('manifest.mpd'), 'earlier task: other-1-aa/video_360p', 'put back');
    assert.equal(existsSync(path.join(out, 'v', 'master.m3u8')), false, 'there was none before');
    assert.deepEqual((await readdir(path.join(out, 'v'))).sort(), ['manifest.mpd', 'other-1-aa']);
    assert.equal(await read('other-1-aa/video_360p/1.m4s'), 'earlier media');
  });

  test('a task that ends without running again after its run died is taken back all the same', async () => {
    const out = path.join(root, 'out-abandoned');
    const storage = new LocalStorage(out);
    await files(path.join(out, 'v'), { 'manifest.mpd': 'before the task', 'poster.jpg': 'old poster' });
    await publisher(storage, 1).publish(
      await files(path.join(root, 'p-abandoned'), {
        'manifest.mpd': `run 1: ${task}-1-ee`,
        'poster.jpg': 'run 1 poster',
        [`${task}-1-ee/a/1.m4s`]: 'run 1 media',
      }),
      ['manifest.mpd', 'poster.jpg', `${task}-1-ee/a/1.m4s`],
    );
    // Cancelled while it waited to be taken again: no run of it comes to take anything back.
    const config = loadConfig({ OUTPUT_DIR: out, STATE_DIR: path.join(root, 'state-abandoned') });
    const record = { id: task, request: { videoFilename: 'v.mp4' } } as TaskRecord;
    await withdrawAbandoned(record, 1, { config, output: storage, logger: createLogger('silent') });
    assert.equal(await readFile(path.join(out, 'v', 'manifest.mpd'), 'utf8'), 'before the task');
    assert.equal(await readFile(path.join(out, 'v', 'poster.jpg'), 'utf8'), 'old poster');
    assert.deepEqual((await readdir(path.join(out, 'v'))).sort(), ['manifest.mpd', 'poster.jpg']);
  });

  test("a run that lost its lease leaves the later run's files; the later run's end clears up", async () => {
    const out = path.join(root, 'out-lease');
    const storage = new LocalStorage(out);
    await files(path.join(out, 'v'), { 'manifest.mpd': 'before the task' });
    const first = publisher(storage, 1);
    await first.publish(
      await files(path.join(root, 'p1'), {
        'manifest.mpd': `run 1: ${task}-1-cc`,
        [`${task}-1-cc/a/1.m4s`]: 'run 1 media',
      }),
      ['manifest.mpd', `${task}-1-cc/a/1.m4s`],
    );
    const second = publisher(storage, 2);
    await second.publish(
      await files(path.join(root, 'p2'), {
        'manifest.mpd': `run 2: ${task}-2-dd`,
        [`${task}-2-dd/a/1.m4s`]: 'run 2 media',
      }),
      ['manifest.mpd', `${task}-2-dd/a/1.m4s`],
    );
    // Run 1 finds it lost its lease and gives up: its own media goes, run 2's manifest stays.
    await first.withdraw();
    assert.equal(await readFile(path.join(out, 'v', 'manifest.mpd'), 'utf8'), `run 2: ${task}-2-dd`);
    assert.equal(existsSync(path.join(out, 'v', `${task}-1-cc`)), false);
    assert.ok(existsSync(path.join(out, 'v', `${task}-2-dd`, 'a', '1.m4s')));
    assert.ok(existsSync(path.join(out, 'v', `.replaced-${task}`)), 'the journal is the later run’s');
    // Run 2 completes: only its package is left, without the journal.
    await second.settle();
    assert.deepEqual((await readdir(path.join(out, 'v'))).sort(), [`${task}-2-dd`, 'manifest.mpd'].sort());
  });
});
