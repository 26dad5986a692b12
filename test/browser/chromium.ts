import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildDashboard } from '../../web/build.js';

/** Debian's chromium (installed by .ci/run); playwright-core never downloads a browser here. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where screenshots of failed browser tests go (ignored by git). */
export const testOutputDir = path.resolve(import.meta.dirname, '../../test-output');

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Errors thrown by the page's scripts: a test asserts there are none. */
  pageErrors: string[];
  /** What the page logged as console errors (a failed load, a 404 among them). */
  consoleErrors: string[];
  close(): Promise<void>;
}

let built: Promise<string> | undefined;

/** Builds the dashboard into dist/web once per test process, as `npm run build` does. */
export function ensureDashboardBuilt(): Promise<string> {
  return (built ??= buildDashboard());
}

/** A headless Chromium with a fresh profile in a temporary directory, removed on close. */
export async function launchBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  const profile = await mkdtemp(path.join(tmpdir(), 'dvc-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  const consoleErrors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`${msg.text()} (${msg.location().url})`);
  });
  return {
    context,
    page,
    pageErrors,
    consoleErrors,
    close: async () => {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Runs a step of a browser test; when it fails, a full-page screenshot is saved into test-output/. */
export async function withScreenshot<T>(page: Page, name: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    await mkdir(testOutputDir, { recursive: true });
    const file = path.join(testOutputDir, `${name.replace(/[^\w.-]+/g, '_')}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
    throw Object.assign(err as Error, { message: `${(err as Error).message}\n(screenshot: ${file})` });
  }
}

/**
 * Waits until the page's <video> has played past `seconds` (still playing, or played to its end) with no
 * error shown by the player; returns the current time then.
 */
export async function waitForPlayback(page: Page, seconds: number, timeoutMs = 30_000): Promise<number> {
  await page.waitForFunction(
    (s) => {
      const error = document.getElementById('player-error')?.textContent;
      if (error) throw new Error(`player error: ${error}`);
      const v = document.querySelector('video');
      return !!v && v.currentTime > s && (!v.paused || v.ended);
    },
    seconds,
    { timeout: timeoutMs, polling: 100 },
  );
  return page.evaluate(() => document.querySelector('video')!.currentTime);
}

/**
 * Seeks the video back to its start and plays, until the page reports a position under 1 s: a seek issued
 * while the player is still loading a new manifest (or after the video ended) can be undone, so it is
 * repeated until it holds.
 */
export async function restartPlayback(page: Page, timeoutMs = 30_000): Promise<void> {
  await page.waitForFunction(
    () => {
      const v = document.querySelector('video');
      if (!v) return false;
      if (v.currentTime < 1 && !v.ended) return true;
      v.currentTime = 0;
      void v.play().catch(() => undefined);
      return false;
    },
    undefined,
    { timeout: timeoutMs, polling: 250 },
  );
}
