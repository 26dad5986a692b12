import assert from 'node:assert/strict';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { checkDashPackage, parseMpd } from '../helpers/package-check.js';
import { listFiles } from '../../src/pipeline/package.js';
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
