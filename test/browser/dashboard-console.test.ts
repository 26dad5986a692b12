import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestService, type TestService } from '../helpers/service.js';
import { ensureDashboardBuilt, launchBrowser, withScreenshot, type Browser } from './chromium.js';

let svc: TestService;
let browser: Browser;
before(async () => {
  await ensureDashboardBuilt();
  svc = await startTestService();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await svc?.close();
});

test('the dashboard loads in Chromium with no console error and asks for no favicon.ico', async () => {
  const { page, pageErrors, consoleErrors } = browser;
  const requested: string[] = [];
  page.on('request', (r) => requested.push(new URL(r.url()).pathname));
  await withScreenshot(page, 'dashboard-console', async () => {
    await page.goto(svc.url);
    await page.locator('#connection[data-mode="live"]').waitFor();
    // The icon is asked for after load (no network idle to wait for: /events stays open).
    await page.waitForLoadState('load');
    await page.waitForTimeout(500);
  });
  assert.deepEqual(consoleErrors, []);
  assert.deepEqual(pageErrors, []);
  assert.ok(!requested.includes('/favicon.ico'), requested.join(', '));
});
