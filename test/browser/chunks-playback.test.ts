import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { contentTypeFor } from '../../src/jobs/content-type.js';
import { convertInChunks } from '../../src/pipeline/chunks/convert-in-chunks.js';
import type { ConversionResult } from '../../src/pipeline/convert.js';
import { defaultTools } from '../../src/pipeline/tools.js';
import { createLogger } from '../../src/process/logger.js';
import { generateClip } from '../helpers/media.js';
import { testEncodeSettings } from '../helpers/media-info.js';
import { launchBrowser, withScreenshot, type Browser } from './chromium.js';

const require = createRequire(import.meta.url);
const shakaScript = require.resolve('shaka-player/dist/shaka-player.compiled.js');

describe('a package stitched from chunks plays in Shaka Player in Chromium', () => {
  let root: string;
  let result: ConversionResult;
  let server: Server;
  let base: string;
  let browser: Browser;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dvc-chunks-play-'));
    const input = await generateClip({ width: 320, height: 180, seconds: 5, audio: true });
    // 1 s segments, chunks of 2: joins at 2 s and 4 s, the last chunk 1 s long.
    result = await convertInChunks(
      input,
      path.join(root, 'work'),
      {
        tools: defaultTools(),
        logger: createLogger('silent'),
        idleTimeoutMs: 60_000,
        maxRuntimeMs: 300_000,
        tempDir: tmpdir(),
      },
      {
        settings: {
          ...testEncodeSettings,
          preset: 'ultrafast',
          segmentDuration: 1,
          ladder: [{ height: 180, bitrate: 300_000 }],
        },
        limits: { maxDurationSeconds: 3600, maxPixels: 1e8, maxFrameRate: 240 },
        chunkSeconds: 2,
        parallel: 2,
      },
    );
    // The package and an empty page, from one origin.
    const dir = result.package.dir;
    server = createServer((req, res) => {
      const key = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
      if (key === '') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html>');
      if (!result.package.files.includes(key)) return void res.writeHead(404).end();
      readFile(path.join(dir, key)).then(
        (body) => res.writeHead(200, { 'content-type': contentTypeFor(key) }).end(body),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await rm(root, { recursive: true, force: true });
  });

  test('it plays through both joins to its end, with no player error', async () => {
    const { page, pageErrors } = browser;
    await withScreenshot(page, 'chunks-shaka', async () => {
      await page.goto(`${base}/`);
      await page.addScriptTag({ path: shakaScript });
      const played = await page.evaluate(async (url) => {
        const shaka = (window as unknown as { shaka: any }).shaka; // eslint-disable-line @typescript-eslint/no-explicit-any
        const video = document.createElement('video');
        video.muted = true;
        document.body.append(video);
        const player = new shaka.Player();
        const errors: string[] = [];
        player.addEventListener('error', (e: { detail?: { code?: number } }) =>
          errors.push(`${e.detail?.code}`),
        );
        await player.attach(video);
        await player.load(url);
        await video.play();
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`stuck at ${video.currentTime}: ${errors}`)),
            30_000,
          );
          video.addEventListener('ended', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        const quality = video.getVideoPlaybackQuality();
        const result = { time: video.currentTime, frames: quality.totalVideoFrames, errors };
        await player.destroy();
        return result;
      }, `${base}/${result.package.dashManifest}`);
      assert.deepEqual(played.errors, []);
      assert.ok(played.time > 4.9, `played to ${played.time} s`);
      // 150 frames in the source; a frame or two may be left unpresented at the very end.
      assert.ok(played.frames >= 145, `${played.frames} frames shown`);
    });
    assert.deepEqual(pageErrors, []);
  });
});
