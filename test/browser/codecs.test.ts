import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseManifest } from '../../src/manifests/mpd.js';
import { generateClip } from '../helpers/media.js';
import {
  startTestService,
  submit,
  waitForFinal,
  type StatusDoc,
  type TestService,
} from '../helpers/service.js';
import { launchBrowser, withScreenshot, type Browser } from './chromium.js';

const require = createRequire(import.meta.url);
const shakaScript = require.resolve('shaka-player/dist/shaka-player.compiled.js');
const dashjsScript = path.resolve(
  import.meta.dirname,
  '../../node_modules/dashjs/dist/modern/umd/dash.all.min.js',
);

describe('video_codecs: one package with H.264, AV1, VP9 and HEVC ladders plays in Chromium', () => {
  let svc: TestService;
  let browser: Browser;
  let doc: StatusDoc;
  let manifestUrl: string;
  before(async () => {
    svc = await startTestService({ X264_PRESET: 'ultrafast', OUTPUT_FORMATS: 'dash,hls' });
    browser = await launchBrowser();
    // Tiny and short: three codecs' encoders on two rungs stay cheap.
    const clip = await generateClip({ width: 256, height: 144, seconds: 3, audio: true, fps: 24 });
    await copyFile(clip, path.join(svc.inputDir, 'codecs.mp4'));
    const id = await submit(svc.url, 'codecs.mp4', {
      video_codecs: ['h264', 'av1', 'vp9', 'hevc'],
      ladder: [
        { height: 72, bitrate: 150_000 },
        { height: 144, bitrate: 300_000 },
      ],
      segment_duration: 1,
    });
    ({ doc } = await waitForFinal(svc.url, id, 180_000));
    assert.equal(doc.status, 'completed', doc.error ?? '');
    manifestUrl = `${svc.url}/output/${doc.output!.manifest!.key}`;
  });
  after(async () => {
    await browser?.close();
    await svc?.close();
  });

  test('the status names each rendition’s codec, and the MPD has one AdaptationSet per codec with identical segment timelines', async () => {
    const renditions = doc.output!.renditions;
    assert.deepEqual(
      renditions.map((r) => `${r.codec} ${r.height}`),
      ['h264 72', 'av1 72', 'vp9 72', 'hevc 72', 'h264 144', 'av1 144', 'vp9 144', 'hevc 144'],
    );
    const xml = await readFile(path.join(svc.outputDir, doc.output!.manifest!.key), 'utf8');
    const sets = [...xml.matchAll(/<AdaptationSet[^>]*contentType="video"[\s\S]*?<\/AdaptationSet>/g)].map(
      (m) => [...m[0].matchAll(/codecs="([^".]+)/g)].map((c) => c[1]),
    );
    assert.deepEqual(sets, [
      ['avc1', 'avc1'],
      ['av01', 'av01'],
      ['vp09', 'vp09'],
      ['hvc1', 'hvc1'],
    ]);
    const videos = parseManifest(xml).representations.filter((r) => r.contentType === 'video');
    assert.equal(videos.length, 8);
    const timeline = (r: (typeof videos)[number]) =>
      r.segments.map((s) => `${s.start}+${s.duration}`).join(' ');
    assert.equal(videos[0]!.segments.length, 3, 'three 1 s segments');
    for (const r of videos) assert.equal(timeline(r), timeline(videos[0]!), `${r.codecs} ${r.height}p`);
    const hls = await readFile(path.join(svc.outputDir, doc.output!.hls_master!.key), 'utf8');
    for (const codec of ['avc1.', 'av01.', 'vp09.', 'hvc1.'])
      assert.match(hls, new RegExp(`CODECS="${codec}`));
  });

  test('Shaka Player plays it choosing AV1, VP9 or H.264 as told to prefer each', async () => {
    const { page } = browser;
    await withScreenshot(page, 'codecs-shaka', async () => {
      await page.goto(`${svc.url}/healthz`);
      await page.addScriptTag({ path: shakaScript });
      for (const [prefer, expected] of [
        ['av01', 'av01'],
        ['vp09', 'vp09'],
        ['avc1', 'avc1'],
      ] as const) {
        const played = await page.evaluate(
          async ({ url, prefer }) => {
            const shaka = (window as unknown as { shaka: any }).shaka; // eslint-disable-line @typescript-eslint/no-explicit-any
            document.querySelector('video')?.remove();
            const video = document.createElement('video');
            video.muted = true;
            document.body.append(video);
            const player = new shaka.Player();
            await player.attach(video);
            player.configure({ preferredVideoCodecs: [prefer] });
            await player.load(url);
            await video.play();
            await new Promise<void>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`stuck at ${video.currentTime}`)), 20_000);
              video.addEventListener('timeupdate', () => {
                if (video.currentTime > 1.5) {
                  clearTimeout(timer);
                  resolve();
                }
              });
            });
            const active = player.getVariantTracks().find((t: { active: boolean }) => t.active);
            const codecs = [
              ...new Set(player.getVariantTracks().map((t: { videoCodec: string }) => t.videoCodec)),
            ];
            const result = { codec: active.videoCodec as string, offered: codecs, time: video.currentTime };
            await player.destroy();
            return result;
          },
          { url: manifestUrl, prefer },
        );
        assert.ok(played.time > 1.5, `played past 1.5 s preferring ${prefer}`);
        assert.ok(
          played.codec.startsWith(expected),
          `preferring ${prefer}, it plays ${played.codec} (offered ${played.offered.join(', ')})`,
        );
      }
    });
  });

  test('dash.js plays it', async () => {
    const { page } = browser;
    await withScreenshot(page, 'codecs-dashjs', async () => {
      await page.goto(`${svc.url}/healthz`);
      await page.addScriptTag({ path: dashjsScript });
      const time = await page.evaluate(async (url) => {
        const dashjs = (window as unknown as { dashjs: any }).dashjs; // eslint-disable-line @typescript-eslint/no-explicit-any
        const video = document.createElement('video');
        video.muted = true;
        document.body.append(video);
        const player = dashjs.MediaPlayer().create();
        const errors: string[] = [];
        player.on('error', (e: { error?: { message?: string } }) => errors.push(e.error?.message ?? 'error'));
        player.initialize(video, url, true);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`stuck at ${video.currentTime}: ${errors.join('; ')}`)),
            20_000,
          );
          video.addEventListener('timeupdate', () => {
            if (video.currentTime > 1.5) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        const reached = video.currentTime;
        player.destroy();
        return reached;
      }, manifestUrl);
      assert.ok(time > 1.5, `dash.js played to ${time} s`);
    });
  });
});
