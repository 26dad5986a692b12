import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateClip } from '../helpers/media.js';
import { startTestService, submit, waitForFinal, type TestService } from '../helpers/service.js';
import {
  ensureDashboardBuilt,
  launchBrowser,
  restartPlayback,
  waitForPlayback,
  withScreenshot,
  type Browser,
} from './chromium.js';

const require = createRequire(import.meta.url);
const key = { key_id: randomBytes(16).toString('hex'), key: randomBytes(16).toString('hex') };

describe('an encrypted (cbcs) package in Chromium: plays with its key as ClearKey, not without', () => {
  let svc: TestService;
  let browser: Browser;
  let manifestUrl: string;
  before(async () => {
    await ensureDashboardBuilt();
    svc = await startTestService();
    browser = await launchBrowser();
    await copyFile(
      await generateClip({ width: 640, height: 360, seconds: 4, audio: true }),
      path.join(svc.inputDir, 'locked.mp4'),
    );
    const id = await submit(svc.url, 'locked.mp4', { encryption: { scheme: 'cbcs', ...key } });
    const { doc } = await waitForFinal(svc.url, id);
    assert.equal(doc.status, 'completed', doc.error ?? '');
    manifestUrl = `${svc.url}/output/${doc.output!.manifest!.key}`;
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
  });

  test('the dashboard says the video is protected, then plays DASH and HLS with the key entered', async () => {
    const { page, pageErrors } = browser;
    await withScreenshot(page, 'encrypted-dashboard', async () => {
      await page.goto(svc.url);
      const row = page.locator('li.task').filter({ hasText: 'locked.mp4' });
      await row.getByRole('button', { name: /^Play/ }).click();
      await page.getByText(/This video is protected \(cbcs\)/).waitFor();
      const field = page.getByLabel(`Key for the video (key ID ${key.key_id})`);
      assert.equal(await field.getAttribute('type'), 'password');
      // Not loaded without the key: no media source on the video.
      assert.equal(await page.locator('#player-panel').getAttribute('data-loaded'), null);
      await field.fill('not a key');
      await page.getByRole('button', { name: 'Play with the key' }).click();
      await page.getByText('A key is 32 hexadecimal digits.').waitFor();
      await field.fill(key.key.toUpperCase());
      await page.getByRole('button', { name: 'Play with the key' }).click();
      await page.locator('#player-panel[data-loaded="dash"]').waitFor({ timeout: 30_000 });
      assert.ok((await waitForPlayback(page, 1.5)) > 1.5);
      await page.getByLabel('HLS').check();
      await page.locator('#player-panel[data-loaded="hls"]').waitFor({ timeout: 30_000 });
      await restartPlayback(page);
      assert.ok((await waitForPlayback(page, 1.5)) > 1.5);
      assert.deepEqual(pageErrors, []);
      // The key entered is kept in memory only.
      const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
      assert.ok(!stored.toLowerCase().includes(key.key), 'the key is not stored by the page');
    });
  });

  test('Shaka Player without the key fails with a DRM error; dash.js plays it with ClearKey', async () => {
    const page = await browser.context.newPage();
    try {
      // A page of the service's origin without the dashboard (whose CSP takes no test script).
      await page.goto(`${svc.url}/healthz`);
      await page.addScriptTag({ path: require.resolve('shaka-player/dist/shaka-player.compiled.js') });
      const code = await page.evaluate(async (url) => {
        const w = window as unknown as { shaka: { Player: new () => ShakaLike } };
        type ShakaLike = { attach(v: HTMLVideoElement): Promise<void>; load(u: string): Promise<void> };
        const video = document.createElement('video');
        document.body.append(video);
        const player = new w.shaka.Player();
        await player.attach(video);
        try {
          await player.load(url);
          return 0;
        } catch (err) {
          return (err as { code: number }).code;
        }
      }, manifestUrl);
      assert.ok(code >= 6000 && code < 7000, `a DRM error (category 6), got ${code}`);

      // `require` resolves to the UMD build (the `dashjs` global).
      await page.addScriptTag({ path: require.resolve('dashjs') });
      const b64url = (hex: string) => Buffer.from(hex, 'hex').toString('base64url');
      const played = await page.evaluate(
        async ({ url, kid, k }) => {
          type DashLike = {
            MediaPlayer(): {
              create(): {
                initialize(v: HTMLVideoElement, u: string, a: boolean): void;
                setProtectionData(d: unknown): void;
              };
            };
          };
          const video = document.createElement('video');
          video.muted = true;
          document.body.append(video);
          const player = (window as unknown as { dashjs: DashLike }).dashjs.MediaPlayer().create();
          player.setProtectionData({ 'org.w3.clearkey': { clearkeys: { [kid]: k } } });
          player.initialize(video, url, true);
          const deadline = Date.now() + 30_000;
          while (Date.now() < deadline && video.currentTime < 1.5 && !video.error) {
            await new Promise((r) => setTimeout(r, 100));
          }
          return video.currentTime;
        },
        { url: manifestUrl, kid: b64url(key.key_id), k: b64url(key.key) },
      );
      assert.ok(played > 1.5, `dash.js played to ${played} s`);
    } finally {
      await page.close();
    }
  });
});
