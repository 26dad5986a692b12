import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { checkDashPackage, joinRepresentation, parseMpd } from '../helpers/package-check.js';
import { decodedFrames, videoTimeline } from '../helpers/split.js';
import { launchBrowser } from '../browser/chromium.js';

const nodeModules = path.resolve(import.meta.dirname, '../../node_modules');

/** Shaka Player plays the package from 3 s past 5.5 s: across the join of the first two chunks at 4 s. */
async function playAcrossJoin(baseUrl: string, manifestKey: string): Promise<void> {
  const browser = await launchBrowser();
  try {
    // A page of the service's own origin, so the package's files are same-origin.
    await browser.context.route(`${baseUrl}/__test/**`, async (route) => {
      const shaka = route.request().url().endsWith('shaka.js');
      await route.fulfill(
        shaka
          ? {
              body: await readFile(path.join(nodeModules, 'shaka-player/dist/shaka-player.compiled.js')),
              contentType: 'text/javascript',
            }
          : {
              contentType: 'text/html',
              body: '<!doctype html><video muted playsinline></video><script src="shaka.js"></script>',
            },
      );
    });
    const { page } = browser;
    await page.goto(`${baseUrl}/__test/page.html`);
    const played = await page.evaluate(async (mpd) => {
      const shaka = (
        window as unknown as {
          shaka: typeof import('shaka-player/dist/shaka-player.compiled-es2021.js').default;
        }
      ).shaka;
      const video = document.querySelector('video')!;
      const player = new shaka.Player();
      const errors: string[] = [];
      player.addEventListener('error', (e) =>
        errors.push(String((e as unknown as { detail: unknown }).detail)),
      );
      await player.attach(video);
      await player.load(mpd, 3);
      await video.play();
      const deadline = Date.now() + 20_000;
      while (video.currentTime < 5.5 && Date.now() < deadline && !errors.length) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const result = {
        time: video.currentTime,
        errors,
        dropped: video.getVideoPlaybackQuality().droppedVideoFrames,
      };
      await player.destroy();
      return result;
    }, `${baseUrl}/output/${manifestKey}`);
    assert.deepEqual(played.errors, [], 'Shaka Player reports no error');
    assert.ok(played.time >= 5.5, `played across the join at 4 s (reached ${played.time.toFixed(2)} s)`);
    assert.deepEqual(browser.pageErrors, []);
  } finally {
    await browser.close();
  }
}
import {
  getJson,
  postJson,
  startTestService,
  submit,
  waitForFinal,
  type TestService,
} from '../helpers/service.js';

/**
 * Split and stitch on the embedded queue: a task longer than its `chunk_seconds` is encoded as chunk rows that
 * the process's workers take, joined by its last run, and published as the same package an unsplit run makes.
 */
describe('split and stitch on the SQLite queue', () => {
  let svc: TestService;
  let source: string;
  let sourceFrames: number;

  before(async () => {
    source = await generateClip({ width: 1280, height: 720, seconds: 12, audio: true });
    sourceFrames = await decodedFrames(source);
    svc = await startTestService({
      WORKER_CONCURRENCY: '2',
      LADDER: '360:400k,720:1500k',
      SEGMENT_DURATION: '2',
      THUMBNAILS: 'false',
      OUTPUT_FORMATS: 'dash',
    });
    await mkdir(svc.inputDir, { recursive: true });
    await copyFile(source, path.join(svc.inputDir, 'clip.mp4'));
    const small = await generateClip({ width: 640, height: 360, seconds: 12, audio: true });
    await copyFile(small, path.join(svc.inputDir, 'small.mp4'));
    await copyFile(small, path.join(svc.inputDir, 'doomed.mp4'));
  });
  after(async () => {
    await svc?.close();
  });

  test('POST /plan shows the split; the split package has the unsplit timeline and every frame', async () => {
    const plan = await postJson(`${svc.url}/plan`, { video_filename: 'clip.mp4', chunk_seconds: 4 });
    assert.equal(plan.status, 200, JSON.stringify(plan.body));
    const split = plan.body.split as { chunks: number; spans: { start: number; end: number }[] };
    assert.equal(split.chunks, 3, JSON.stringify(split));
    assert.deepEqual(
      split.spans.map((s) => [s.start, s.end]),
      [
        [0, 4],
        [4, 8],
        [8, 12],
      ],
    );
    const unsplitPlan = await postJson(`${svc.url}/plan`, { video_filename: 'clip.mp4', chunk_seconds: 0 });
    assert.equal((unsplitPlan.body.split as { chunks: number }).chunks, 0);

    const splitId = await submit(svc.url, 'clip.mp4', { chunk_seconds: 4, output_prefix: 'split' });
    let sawChunks: { total: number; done: number } | undefined;
    for (let i = 0; i < 600 && !sawChunks; i++) {
      const { body } = await getJson(`${svc.url}/status/${splitId}`);
      sawChunks = body.chunks as typeof sawChunks;
      if (body.status === 'completed' || body.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const { doc } = await waitForFinal(svc.url, splitId, 240_000);
    assert.equal(doc.status, 'completed', `${doc.error_code}: ${doc.error}`);
    assert.deepEqual(
      sawChunks && { total: sawChunks.total },
      { total: 4 },
      'three video chunks and the audio',
    );
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /dvc_chunk_jobs_total\{kind="video",outcome="completed"\} 3\b/);
    assert.match(metrics, /dvc_chunk_jobs_total\{kind="audio",outcome="completed"\} 1\b/);

    const wholeId = await submit(svc.url, 'clip.mp4', { chunk_seconds: 0, output_prefix: 'whole' });
    const whole = await waitForFinal(svc.url, wholeId, 240_000);
    assert.equal(whole.doc.status, 'completed', `${whole.doc.error_code}: ${whole.doc.error}`);

    const splitMpd = await checkDashPackage(path.join(svc.outputDir, 'split'), {
      heights: [360, 720],
      audio: true,
      segmentDuration: 2,
    });
    const wholeMpd = parseMpd(await readFile(path.join(svc.outputDir, 'whole', 'manifest.mpd'), 'utf8'));
    assert.deepEqual(videoTimeline(splitMpd), videoTimeline(wholeMpd), 'the same segment timeline');
    const tmp = await mkdtemp(path.join(tmpdir(), 'dvc-split-'));
    try {
      for (const rep of splitMpd.representations.filter((r) => r.contentType === 'video')) {
        const joined = await joinRepresentation(path.join(svc.outputDir, 'split'), rep, tmp);
        assert.equal(await decodedFrames(joined), sourceFrames, `${rep.id}: every source frame, once`);
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    await playAcrossJoin(svc.url, 'split/manifest.mpd');

    // The chunk outputs are gone with the task.
    const work = await readdir(path.join(svc.outputDir, '.dvc-chunks')).catch(() => []);
    for (let i = 0; i < 50 && work.length; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      await readdir(path.join(svc.outputDir, '.dvc-chunks', splitId)).catch(() => []),
      [],
      'chunk outputs removed',
    );
  });

  test('cancel ends a task waiting for its chunks at once; a chunk that finds no input fails the task', async () => {
    const waitForChunks = async (id: string) => {
      for (let i = 0; i < 600; i++) {
        const { body } = await getJson(`${svc.url}/status/${id}`);
        if (body.chunks) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.fail('the task was not split');
    };
    const id = await submit(svc.url, 'small.mp4', { chunk_seconds: 2 });
    await waitForChunks(id);
    const res = await postJson(`${svc.url}/tasks/${id}/cancel`, {});
    assert.equal(res.status, 200);
    assert.deepEqual([res.body.status, res.body.error_code], ['failed', 'cancelled'], 'ended by the cancel');
    // The chunks running stop; none completes the task afterwards, and their outputs go.
    await new Promise((r) => setTimeout(r, 2500));
    const { body } = await getJson(`${svc.url}/status/${id}`);
    assert.deepEqual([body.status, body.cancelled], ['failed', true]);
    assert.deepEqual(await readdir(path.join(svc.outputDir, '.dvc-chunks', id)).catch(() => []), []);

    const doomed = await submit(svc.url, 'doomed.mp4', { chunk_seconds: 2 });
    await waitForChunks(doomed);
    await rm(path.join(svc.inputDir, 'doomed.mp4'));
    const { doc } = await waitForFinal(svc.url, doomed, 120_000);
    // Whether a chunk job finds no input or loses it while FFmpeg opens it, the reason is the input's absence.
    assert.deepEqual(
      [doc.status, doc.error_code, doc.error],
      ['failed', 'input_not_found', 'input not found'],
    );
  });
});
