import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PutBucketCorsCommand } from '@aws-sdk/client-s3';
import { generateClip } from '../helpers/media.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { postJson, startTestService, type TestService } from '../helpers/service.js';
import {
  ensureDashboardBuilt,
  launchBrowser,
  restartPlayback,
  waitForPlayback,
  withScreenshot,
  type Browser,
} from './chromium.js';

const statusOf = (page: Browser['page'], id: string) =>
  page.locator(`li.task[data-task-id="${id}"]`).getAttribute('data-status');

describe('dashboard in Chromium: upload, live progress, DASH and HLS playback behind an API key', () => {
  const key = 'browser-test-key';
  let svc: TestService;
  let browser: Browser;
  before(async () => {
    await ensureDashboardBuilt();
    svc = await startTestService({ API_KEY: key });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
  });

  test('asks for the key, uploads a clip with progress, follows the task to 100 %, plays DASH then HLS', async () => {
    const { page, pageErrors } = browser;
    const clip = await generateClip({ width: 640, height: 360, seconds: 6, audio: true });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));

    await withScreenshot(page, 'dashboard-upload-and-play', async () => {
      const html = await page.goto(svc.url);
      assert.equal(html?.status(), 200, 'the page itself needs no key');
      assert.match(html?.headers()['content-security-policy'] ?? '', /script-src 'self'/);

      // 401 from the API: the page asks for the key; a wrong one is refused, the right one lets it in.
      await page.getByRole('textbox', { name: 'API key' }).waitFor({ state: 'visible' });
      await page.getByRole('textbox', { name: 'API key' }).fill('wrong');
      await page.getByRole('button', { name: 'Use this key' }).click();
      await page.getByText('That key was not accepted.').waitFor();
      // A key pasted with a typographic dash cannot travel in a header: said so, the form stays.
      await page.getByRole('textbox', { name: 'API key' }).fill('s3cret\u2011key');
      await page.getByRole('button', { name: 'Use this key' }).click();
      await page.getByText(/made of printable ASCII characters/).waitFor();
      assert.equal(await page.locator('#key-panel').isHidden(), false);
      await page.getByRole('textbox', { name: 'API key' }).fill(key);
      await page.getByRole('button', { name: 'Use this key' }).click();
      await page.locator('#connection[data-mode="live"]').waitFor();
      assert.equal(await page.locator('#key-panel').isHidden(), true);

      // Record every status and progress value the row shows, to see the live updates happen.
      await page.evaluate(() => {
        const seen: { status: string[]; progress: number[] } = { status: [], progress: [] };
        (window as unknown as { seen: typeof seen }).seen = seen;
        new MutationObserver(() => {
          for (const li of Array.from(document.querySelectorAll<HTMLElement>('li.task'))) {
            const s = li.dataset.status ?? '';
            if (seen.status.at(-1) !== s) seen.status.push(s);
            const p = li.querySelector('progress')!.value;
            if (seen.progress.at(-1) !== p) seen.progress.push(p);
          }
        }).observe(document.getElementById('task-list')!, {
          subtree: true,
          attributes: true,
          childList: true,
        });
      });

      // A slow uplink (~400 KB/s), so the upload's progress bar is seen moving.
      const cdp = await browser.context.newCDPSession(page);
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false,
        latency: 20,
        downloadThroughput: -1,
        uploadThroughput: 400 * 1024,
      });
      await page.evaluate(() => {
        const values: number[] = [];
        (window as unknown as { uploadValues: number[] }).uploadValues = values;
        const bar = document.getElementById('upload-progress') as HTMLProgressElement;
        new MutationObserver(() => values.push(bar.value)).observe(bar, { attributes: true });
      });
      await page.setInputFiles('#file-input', clip);
      await page.locator('#upload-status').waitFor({ state: 'visible' });
      await page
        .locator('#upload-text')
        .filter({ hasText: /^[1-9]\d?% · [\d.]+ (KB|MB) of [\d.]+ MB$/ })
        .waitFor();
      await page.getByText('is uploaded and queued for conversion').waitFor({ timeout: 60_000 });
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false,
        latency: 0,
        downloadThroughput: -1,
        uploadThroughput: -1,
      });
      const uploadValues = await page.evaluate(
        () => (window as unknown as { uploadValues: number[] }).uploadValues,
      );
      assert.ok(
        uploadValues.filter((v) => v > 0 && v < 100).length >= 3,
        `the upload bar moved in steps: ${uploadValues.map((v) => v.toFixed(0)).join(', ')}`,
      );
      assert.equal(await page.locator('#upload-status').isHidden(), true, 'the bar goes away when done');
      const row = page.locator('li.task').first();
      const id = (await row.getAttribute('data-task-id'))!;
      assert.ok(id, 'the new task is listed');
      assert.match((await row.locator('.task-name').textContent()) ?? '', /\.mp4$/);
      await page
        .locator(`li.task[data-task-id="${id}"][data-status="completed"]`)
        .waitFor({ timeout: 120_000 });
      assert.equal(await row.locator('progress').evaluate((p: HTMLProgressElement) => p.value), 100);
      assert.equal(await row.locator('.task-percent').textContent(), '100%');
      const seen = await page.evaluate(() => (window as unknown as { seen: { status: string[] } }).seen);
      assert.equal(seen.status.at(-1), 'completed');
      assert.ok(
        seen.status.some((s) => s === 'queued' || s === 'processing'),
        `the row went through queued/processing before completing: ${seen.status.join(' → ')}`,
      );
      assert.equal(await row.getByRole('button', { name: /^Cancel/ }).isHidden(), true);
      await page
        .getByRole('status')
        .filter({ hasText: /\.mp4 is ready to play\.$/ })
        .waitFor();

      // DASH first.
      await row.getByRole('button', { name: /^Play/ }).click();
      await page.locator('#player-panel[data-loaded="dash"]').waitFor({ timeout: 30_000 });
      const dashUrl = await page.getByLabel('Manifest URL').inputValue();
      assert.match(dashUrl, /^http:\/\/127\.0\.0\.1:\d+\/output\/uploads\/[0-9a-f-]{36}\/.+\/manifest\.mpd$/);
      assert.ok((await waitForPlayback(page, 2)) > 2);
      assert.ok(
        requests.some((u) => u.endsWith('.m4s')),
        'media segments were fetched',
      );
      const cells = await page
        .locator('#renditions tbody tr')
        .evaluateAll((rows) =>
          rows.map((r) => Array.from(r.querySelectorAll('td')).map((td) => td.textContent)),
        );
      assert.deepEqual(
        cells.map((c) => c.slice(0, 2)),
        [
          ['360p', '640×360'],
          ['audio', 'AAC stereo'],
        ],
      );
      assert.match(cells[0]![2] ?? '', /^\d+ kbit\/s$/);
      assert.equal(await page.locator('#renditions tbody tr').first().getAttribute('aria-current'), 'true');
      const posterWidth = await page
        .locator('#poster')
        .evaluate(async (img: HTMLImageElement) => (await img.decode().then(() => img.naturalWidth)) ?? 0);
      assert.ok(posterWidth >= 320, `the poster shows (${posterWidth} px wide)`);

      // Then HLS, from the same segments, in the same Shaka Player; played from the start again.
      const before = requests.length;
      await page.getByLabel('HLS').check();
      await page.locator('#player-panel[data-loaded="hls"]').waitFor({ timeout: 30_000 });
      assert.match(await page.getByLabel('Manifest URL').inputValue(), /\/master\.m3u8$/);
      await restartPlayback(page);
      assert.ok((await waitForPlayback(page, 2)) > 2);
      const hlsRequests = requests.slice(before);
      assert.ok(
        hlsRequests.some((u) => u.endsWith('/master.m3u8')),
        'the master playlist was loaded',
      );
      assert.ok(
        hlsRequests.some((u) => u.endsWith('.m3u8') && !u.endsWith('/master.m3u8')),
        'media playlists were loaded',
      );
      assert.equal(await page.locator('#player-error').textContent(), '');

      // The copy button puts the URL on the clipboard, or selects it for the person to copy.
      await page.getByRole('button', { name: 'Copy' }).click();
      await page
        .locator('#copy-message')
        .filter({ hasText: /Copied|copy the selected URL/ })
        .waitFor();

      // At phone width nothing spills sideways.
      await page.setViewportSize({ width: 375, height: 800 });
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px at 375 px`);
      await page.setViewportSize({ width: 1280, height: 900 });
      assert.deepEqual(pageErrors, []);
      assert.equal(await statusOf(page, id), 'completed');
    });
  });
});

describe('dashboard in Chromium: failures in plain words, polling fallback, cancel from the keyboard', () => {
  let svc: TestService;
  let idle: TestService;
  let browser: Browser;
  before(async () => {
    await ensureDashboardBuilt();
    svc = await startTestService();
    // No worker: its tasks stay queued until cancelled.
    idle = await startTestService({}, { worker: false });
    browser = await launchBrowser({ width: 390, height: 844 });
  });
  after(async () => {
    await browser?.close();
    await Promise.allSettled([svc?.close(), idle?.close()]);
  });

  test('without /events the page polls; a dropped file that is no video fails with a reason a person reads', async () => {
    const { page, pageErrors } = browser;
    await withScreenshot(page, 'dashboard-failure-polling', async () => {
      await page.route('**/events', (route) => route.abort());
      await page.goto(svc.url);
      await page.locator('#connection[data-mode="polling"]').waitFor({ timeout: 15_000 });
      const notVideo = path.join(svc.root, 'notes.mp4');
      await writeFile(notVideo, 'these are notes, not a video\n'.repeat(100));
      // Dropped on the drop zone, as a person would drag it from a file manager.
      const dropped = await page.evaluateHandle(
        (text) => {
          const dt = new DataTransfer();
          dt.items.add(new File([text], 'notes.mp4', { type: 'video/mp4' }));
          return dt;
        },
        await readFile(notVideo, 'utf8'),
      );
      await page.dispatchEvent('#drop-zone', 'dragover', { dataTransfer: dropped });
      assert.match((await page.locator('#drop-zone').getAttribute('class')) ?? '', /dragging/);
      await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: dropped });
      const row = page.locator('li.task').first();
      await row.locator('xpath=self::*[@data-status="failed"]').waitFor({ timeout: 60_000 });
      assert.equal(await row.locator('.badge').textContent(), 'Failed');
      assert.match(
        (await row.locator('.task-error').textContent()) ?? '',
        /^This file is not a video that can be read\. \S/,
      );
      assert.equal(await row.getByRole('button', { name: /^Play/ }).isHidden(), true);
      assert.deepEqual(pageErrors, []);
      await page.unroute('**/events');
    });
  });

  test('a queued task is cancelled with the keyboard and shows as cancelled', async () => {
    const { page, pageErrors } = browser;
    await withScreenshot(page, 'dashboard-cancel', async () => {
      const res = await postJson(`${idle.url}/encode`, { video_filename: 'waiting.mp4' });
      assert.equal(res.status, 202);
      const id = res.body.task_id as string;
      await page.goto(idle.url);
      const row = page.locator(`li.task[data-task-id="${id}"]`);
      await row.locator('xpath=self::*[@data-status="queued"]').waitFor();
      assert.equal(await row.locator('.task-detail').textContent(), 'waiting: number 1 in the queue');
      await row.getByRole('button', { name: 'Cancel waiting.mp4' }).focus();
      await page.keyboard.press('Enter');
      await row.locator('xpath=self::*[@data-status="cancelled"]').waitFor();
      assert.equal(await row.locator('.badge').textContent(), 'Cancelled');
      assert.equal(await row.locator('.task-error').textContent(), 'The conversion was cancelled.');
      assert.equal(await row.getByRole('button', { name: /^Cancel/ }).isHidden(), true);
      const status = await (await fetch(`${idle.url}/status/${id}`)).json();
      assert.equal((status as { cancelled: boolean }).cancelled, true);
      assert.deepEqual(pageErrors, []);
    });
  });
});

describe('dashboard in Chromium on S3 input storage: the file goes straight to the bucket', () => {
  let s3: TestS3;
  let svc: TestService;
  let browser: Browser;
  let bucket: string;
  before(async () => {
    await ensureDashboardBuilt();
    s3 = await startS3Server();
    bucket = await s3.createBucket('page-uploads');
    // A browser may PUT to another origin only when the bucket allows it: the bucket owner's setting.
    await s3.client.send(
      new PutBucketCorsCommand({
        Bucket: bucket,
        CORSConfiguration: {
          CORSRules: [{ AllowedOrigins: ['*'], AllowedMethods: ['PUT'], AllowedHeaders: ['*'] }],
        },
      }),
    );
    svc = await startTestService(s3.env({ INPUT_S3_BUCKET: bucket }));
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
    await s3?.stop();
  });

  test('upload by presigned PUT with progress, then conversion and playback', async () => {
    const { page, pageErrors } = browser;
    const clip = await generateClip({ width: 640, height: 360, seconds: 6, audio: true });
    const puts: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'PUT') puts.push(r.url());
    });
    await withScreenshot(page, 'dashboard-s3-upload', async () => {
      await page.goto(svc.url);
      await page.locator('#connection[data-mode="live"]').waitFor();
      await page.setInputFiles('#file-input', clip);
      await page.getByText('is uploaded and queued for conversion').waitFor({ timeout: 30_000 });
      assert.equal(puts.length, 1);
      assert.ok(puts[0]!.startsWith(s3.endpoint), `the PUT went to the bucket: ${puts[0]}`);
      const stored = await s3.listObjects(bucket, 'uploads/');
      assert.equal(stored.length, 1);
      assert.match(stored[0]!.key, /^uploads\/[0-9a-f-]{36}\/640x360_6s_30fps_a\.mp4$/);
      const row = page.locator('li.task').first();
      await row.locator('xpath=self::*[@data-status="completed"]').waitFor({ timeout: 120_000 });
      await row.getByRole('button', { name: /^Play/ }).click();
      await page.locator('#player-panel[data-loaded="dash"]').waitFor({ timeout: 30_000 });
      assert.ok((await waitForPlayback(page, 2)) > 2);
      assert.deepEqual(pageErrors, []);
    });
  });
});

describe('dashboard in Chromium with EARLY_MANIFEST: plays while the task runs, then the full ladder', () => {
  let svc: TestService;
  let browser: Browser;
  before(async () => {
    await ensureDashboardBuilt();
    svc = await startTestService({
      EARLY_MANIFEST: 'true',
      LADDER: '360:600k,720:2000k',
      // The second run (720p) has to take long enough for the early package to be played on its own.
      X264_PRESET: 'slow',
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
  });

  test('"Play now" plays the lowest rung while processing; on completion the player reloads with both rungs', async () => {
    const { page, pageErrors } = browser;
    await withScreenshot(page, 'dashboard-early-manifest', async () => {
      const clip = await generateClip({ width: 1280, height: 720, seconds: 16, audio: true });
      await writeFile(path.join(svc.inputDir, 'early.mp4'), await readFile(clip));
      await page.goto(svc.url);
      const res = await postJson(`${svc.url}/encode`, { video_filename: 'early.mp4' });
      assert.equal(res.status, 202);
      const id = res.body.task_id as string;
      const row = page.locator(`li.task[data-task-id="${id}"]`);
      const playNow = row.getByRole('button', { name: 'Play early.mp4 now, in its lowest quality' });
      await playNow.waitFor({ state: 'visible', timeout: 60_000 });
      assert.equal(await statusOf(page, id), 'processing');
      assert.equal(await playNow.textContent(), 'Play now');
      await playNow.click();
      await page.locator('#player-panel[data-loaded="dash"][data-early="true"]').waitFor({ timeout: 30_000 });
      assert.ok((await waitForPlayback(page, 1)) > 1);
      const heights = () =>
        page
          .locator('#renditions tbody tr')
          .evaluateAll((rows) => rows.map((r) => r.children[0]?.textContent));
      assert.deepEqual(await heights(), ['360p', 'audio'], 'the early package: lowest rung and audio');

      await row.locator('xpath=self::*[@data-status="completed"]').waitFor({ timeout: 120_000 });
      await page
        .locator('#player-panel[data-loaded="dash"][data-early="false"]')
        .waitFor({ timeout: 30_000 });
      assert.deepEqual(await heights(), ['360p', '720p', 'audio'], 'the full ladder, reloaded in place');
      assert.equal(await row.getByRole('button', { name: 'Play early.mp4' }).textContent(), 'Play');
      await waitForPlayback(page, 0.5);
      assert.deepEqual(pageErrors, []);
    });
  });
});
