import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { getJson, startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';
import { ensureDashboardBuilt, launchBrowser, withScreenshot, type Browser } from './chromium.js';

const nodeModules = path.resolve(import.meta.dirname, '../../node_modules');

/** The status document's thumbnails, as the service reports them. */
interface ThumbnailsOutput {
  vtt: { key: string };
  sheets: { key: string }[];
  interval: number;
  width: number;
  height: number;
  columns: number;
  rows: number;
}

describe('seek-bar thumbnails and I-frame playlists in Chromium: Shaka Player, hls.js, the dashboard', () => {
  let svc: TestService;
  let browser: Browser;
  let prefix: string;
  let thumbs: ThumbnailsOutput;
  before(async () => {
    await ensureDashboardBuilt();
    svc = await startTestService({ LADDER: '180:300k', SEGMENT_DURATION: '4' });
    browser = await launchBrowser();
    // A 40 s video: 20 thumbnails 2 s apart on one 10x10 sheet.
    const clip = await generateClip({ width: 320, height: 180, seconds: 40, audio: true });
    await copyFile(clip, path.join(svc.inputDir, 'forty.mp4'));
    const { doc } = await waitForFinal(svc.url, await submit(svc.url, 'forty.mp4'), 240_000);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    prefix = doc.output!.prefix;
    thumbs = (doc.output as unknown as { thumbnails: ThumbnailsOutput }).thumbnails;
    // Pages of the service's own origin (so the package's files are same-origin) serving the players.
    await browser.context.route(`${svc.url}/__test/**`, async (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop()!;
      const files: Record<string, [string, string]> = {
        'shaka.js': [path.join(nodeModules, 'shaka-player/dist/shaka-player.compiled.js'), 'text/javascript'],
        'hls.js': [path.join(nodeModules, 'hls.js/dist/hls.min.js'), 'text/javascript'],
      };
      const file = files[name];
      await route.fulfill(
        file
          ? { body: await readFile(file[0]), contentType: file[1] }
          : {
              contentType: 'text/html',
              body: '<!doctype html><video muted playsinline></video><script src="shaka.js"></script><script src="hls.js"></script>',
            },
      );
    });
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
  });

  test('the status document names the track and the sheets; the MPD has an image AdaptationSet', async () => {
    assert.deepEqual(
      { vtt: thumbs.vtt.key, interval: thumbs.interval, grid: `${thumbs.columns}x${thumbs.rows}` },
      { vtt: `${prefix}/thumbnails.vtt`, interval: 2, grid: '10x10' },
    );
    assert.equal(thumbs.sheets.length, 1);
    assert.match(thumbs.sheets[0]!.key, new RegExp(`^${prefix}/[^/]+/thumbnails/sheet-1\\.jpg$`));
    const res = await fetch(`${svc.url}/output/${thumbs.vtt.key}`);
    assert.equal(res.headers.get('content-type')?.split(';')[0], 'text/vtt');
  });

  test('Shaka Player lists the image track and answers getThumbnails with the right tile, from the MPD and the HLS master', async () => {
    const { page, pageErrors } = browser;
    const master = await (await fetch(`${svc.url}/output/${prefix}/master.m3u8`)).text();
    assert.match(
      master,
      /#EXT-X-IMAGE-STREAM-INF:[^\n]*RESOLUTION=\d+x\d+,CODECS="jpeg",URI="[^"]+\/thumbnails\/images\.m3u8"/,
    );
    // The DASH image AdaptationSet, then the HLS image playlist (EXT-X-TILES): the same tiles.
    for (const manifest of ['manifest.mpd', 'master.m3u8']) {
      await withScreenshot(page, `thumbnails-shaka-${manifest}`, async () => {
        await page.goto(`${svc.url}/__test/page.html`);
        const found = await page.evaluate(async (mpd) => {
          const shaka = (
            window as unknown as {
              shaka: typeof import('shaka-player/dist/shaka-player.compiled-es2021.js').default;
            }
          ).shaka;
          const player = new shaka.Player();
          await player.attach(document.querySelector('video')!);
          await player.load(mpd);
          const tracks = player.getImageTracks();
          // No named functions in here: the test's transpiler would wrap them in a helper the page lacks.
          const thumbs = [];
          for (const t of [25.2, 39.5]) {
            const th = await player.getThumbnails(tracks[0]!.id, t);
            thumbs.push(
              th && {
                x: th.positionX,
                y: th.positionY,
                w: th.width,
                h: th.height,
                start: th.startTime,
                uri: th.uris[0],
              },
            );
          }
          const result = {
            tracks: tracks.map((t) => ({
              layout: t.tilesLayout,
              mime: t.mimeType,
              width: t.width,
              height: t.height,
            })),
            mid: thumbs[0],
            last: thumbs[1],
          };
          await player.destroy();
          return result;
        }, `${svc.url}/output/${prefix}/${manifest}`);
        const { width: w, height: h } = thumbs;
        // Shaka states a DASH image track's size as one tile's (the sheet's over the grid), an HLS one's as
        // its sheet's (the grid is its segments').
        const track = manifest.endsWith('.mpd')
          ? { layout: '10x10', mime: 'image/jpeg', width: w, height: h }
          : { layout: null, mime: 'image/jpeg', width: 10 * w, height: 10 * h };
        assert.deepEqual(found.tracks, [track], manifest);
        // 25.2 s is the 13th thumbnail (from 24 s): row 1, column 2.
        assert.deepEqual(
          { ...found.mid, uri: undefined },
          { x: 2 * w, y: h, w, h, start: 24, uri: undefined },
        );
        assert.match(found.mid!.uri!, /\/thumbnails\/sheet-1\.jpg$/);
        assert.deepEqual([found.last!.x, found.last!.y, found.last!.start], [9 * w, h, 38], manifest);
        assert.deepEqual(pageErrors, []);
      });
    }
  });

  test('hls.js still plays the master playlist that lists I-frame playlists and the image playlist', async () => {
    const master = await (await fetch(`${svc.url}/output/${prefix}/master.m3u8`)).text();
    assert.match(master, /#EXT-X-I-FRAME-STREAM-INF:[^\n]*URI="[^"]+\/video_180p\/iframe\.m3u8"/);
    const { page } = browser;
    await withScreenshot(page, 'thumbnails-hlsjs', async () => {
      await page.goto(`${svc.url}/__test/page.html`);
      const played = await page.evaluate(async (url) => {
        const Hls = (window as unknown as { Hls: typeof import('hls.js').default }).Hls;
        const video = document.querySelector('video')!;
        const hls = new Hls();
        let fatal: string | undefined;
        hls.on(Hls.Events.ERROR, (_e, data) => {
          if (data.fatal) fatal = `${data.type}: ${data.details}`;
        });
        hls.loadSource(url);
        hls.attachMedia(video);
        await new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
        await video.play();
        const deadline = Date.now() + 30_000;
        while (video.currentTime <= 2 && !fatal && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const outcome = fatal ?? (video.currentTime > 2 ? 'played' : `stuck at ${video.currentTime} s`);
        const levels = hls.levels.length;
        hls.destroy();
        return { outcome, levels };
      }, `${svc.url}/output/${prefix}/master.m3u8`);
      assert.deepEqual(played, { outcome: 'played', levels: 1 });
    });
  });

  test('the dashboard shows the thumbnail above the seek bar while scrubbing, for DASH and for HLS', async () => {
    const { page, pageErrors } = browser;
    await withScreenshot(page, 'thumbnails-dashboard', async () => {
      await page.goto(svc.url);
      await page.getByRole('button', { name: 'Play forty.mp4' }).click();
      const bar = page.getByRole('slider', { name: 'Seek' });
      const preview = page.locator('#thumbnail-preview');
      const picture = page.locator('#thumbnail-picture');
      for (const format of ['dash', 'hls'] as const) {
        if (format === 'hls') await page.getByLabel('HLS').check();
        await page.locator(`#player-panel[data-loaded="${format}"]`).waitFor({ timeout: 30_000 });
        await page.locator('#seek-bar[data-thumbnails="true"]').waitFor();
        const box = (await bar.boundingBox())!;
        await page.mouse.move(box.x + box.width * 0.63, box.y + box.height / 2);
        await preview.waitFor({ state: 'visible' });
        assert.match((await picture.getAttribute('data-sheet')) ?? '', /\/thumbnails\/sheet-1\.jpg$/, format);
        assert.deepEqual(
          [await picture.getAttribute('data-x'), await picture.getAttribute('data-y')],
          [String(2 * thumbs.width), String(thumbs.height)],
          `${format}: the tile of 25.2 s`,
        );
        assert.match(await picture.evaluate((p) => getComputedStyle(p).backgroundImage), /sheet-1\.jpg/);
        await page.mouse.move(box.x + box.width / 2, box.y - 200);
        await preview.waitFor({ state: 'hidden' });
      }
      assert.deepEqual(pageErrors, []);
    });
  });

  test('"thumbnails": false gives a package without them', async () => {
    const clip = await generateClip({ width: 320, height: 180, seconds: 3, audio: true });
    await copyFile(clip, path.join(svc.inputDir, 'plain.mp4'));
    const id = await submit(svc.url, 'plain.mp4', { thumbnails: false });
    const { doc } = await waitForFinal(svc.url, id, 120_000);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    const full = (await getJson(`${svc.url}/status/${id}`)).body as {
      options: Record<string, unknown>;
      output: Record<string, unknown>;
    };
    assert.deepEqual(full.options, { thumbnails: false });
    assert.equal(full.output.thumbnails, undefined);
    const base = `${svc.url}/output/${doc.output!.prefix}`;
    assert.equal((await fetch(`${base}/thumbnails.vtt`)).status, 404);
    assert.doesNotMatch(await (await fetch(`${base}/manifest.mpd`)).text(), /contentType="image"/);
    assert.doesNotMatch(await (await fetch(`${base}/master.m3u8`)).text(), /I-FRAME|IMAGE-STREAM/);
  });
});
