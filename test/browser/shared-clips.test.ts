import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sharedClips, sharedMediaDir } from '../helpers/media.js';
import {
  startTestService,
  submit,
  waitForFinal,
  type StatusDoc,
  type TestService,
} from '../helpers/service.js';
import {
  ensureDashboardBuilt,
  launchBrowser,
  restartPlayback,
  waitForPlayback,
  withScreenshot,
  type Browser,
} from './chromium.js';

describe('every real clip in ../shared/media converts and plays in Shaka Player in Chromium', () => {
  let svc: TestService;
  let browser: Browser;
  const done = new Map<string, StatusDoc & { output: { duration?: number } }>();
  before(async () => {
    await ensureDashboardBuilt();
    svc = await startTestService({ X264_PRESET: 'ultrafast' });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
  });

  test('all clips convert', async () => {
    const ids = new Map<string, string>();
    for (const clip of sharedClips) {
      await copyFile(path.join(sharedMediaDir, clip), path.join(svc.inputDir, clip));
      ids.set(clip, await submit(svc.url, clip));
    }
    const failed: string[] = [];
    for (const [clip, id] of ids) {
      const { doc } = await waitForFinal(svc.url, id, 300_000);
      if (doc.status === 'completed') done.set(clip, doc as StatusDoc & { output: { duration?: number } });
      else failed.push(`${clip}: ${doc.error ?? doc.status}`);
    }
    assert.deepEqual(failed, [], 'every clip converts');
  });

  // One page session for all of them: each is picked from the task list and played in turn.
  test('each plays as DASH and as HLS: time advances, the picture has the shape of the top rendition, no player error', async () => {
    // Those that converted are played even when another did not: each failure is its own finding.
    assert.ok(done.size > 0, 'some clip converted');
    const { page, pageErrors } = browser;
    await page.goto(svc.url);
    for (const clip of sharedClips.filter((c) => done.has(c))) {
      await withScreenshot(page, `shared-clip-${clip}`, async () => {
        const doc = done.get(clip)!;
        const row = page.locator(`li.task[data-task-id="${doc.task_id}"]`);
        await row.locator('xpath=self::*[@data-status="completed"]').waitFor();
        await row.getByRole('button', { name: `Play ${clip}` }).click();
        await page.locator('#player-panel[data-loaded="dash"]').waitFor({ timeout: 30_000 });
        assert.match(
          await page.getByLabel('Manifest URL').inputValue(),
          new RegExp(`/${doc.output!.prefix}/manifest\\.mpd$`),
        );
        // Two of the clips last a little over 2 s: for them, most of their length.
        const duration = doc.output!.duration ?? 2.5;
        const reached = await waitForPlayback(page, Math.min(2, duration * 0.75), 40_000);
        assert.ok(reached > 0.5, `${clip} played to ${reached} s`);
        const shape = await page.evaluate(() => {
          const v = document.querySelector('video')!;
          return { w: v.videoWidth, h: v.videoHeight };
        });
        const top = doc.output!.renditions.at(-1)!;
        assert.ok(shape.w > 0 && shape.h > 0, `${clip}: a picture is shown`);
        const ratio = shape.w / shape.h / (top.width / top.height);
        assert.ok(
          Math.abs(ratio - 1) < 0.03,
          `${clip}: shown ${shape.w}x${shape.h}, top rendition ${top.width}x${top.height}`,
        );
        assert.equal(await page.locator('#player-error').textContent(), '');

        // The same package as HLS, from the start.
        await page.getByLabel('HLS').check();
        await page.locator('#player-panel[data-loaded="hls"]').waitFor({ timeout: 30_000 });
        await restartPlayback(page);
        await waitForPlayback(page, Math.min(1.5, duration * 0.6), 40_000);
        await page.getByLabel('MPEG-DASH').check();
      });
    }
    assert.deepEqual(pageErrors, []);
    assert.equal(done.size, sharedClips.length, 'every clip converted and played');
  });
});
