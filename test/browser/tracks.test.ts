import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { checkDashPackage } from '../helpers/package-check.js';
import { serveStatic } from '../helpers/static-server.js';
import { submit, startTestService, waitForFinal } from '../helpers/service.js';
import { ensureDashboardBuilt, launchBrowser, withScreenshot, type Browser } from './chromium.js';

const run = promisify(execFile);
const cli = ['--import', 'tsx', 'src/cli/main.ts'];
const modules = path.resolve(import.meta.dirname, '../../node_modules');

/**
 * A film with three audio tracks (English, French in 5.1, an English audio description) and an English
 * subtitle stream, in Matroska (SRT) for the CLI and in MP4 (mov_text) for the worker, with a French sidecar
 * SRT: one package whose DASH and HLS manifests carry every track with its language and exactly one default,
 * which Shaka Player (DASH and HLS), hls.js and dash.js in Chromium list and play (issue 21's done-when).
 */
describe('every audio track of the source is packaged', () => {
  let dir: string;
  let pkg: string;
  let sidecar: string;
  let report: string;
  let input: string;
  let mkv: string;
  let browser: Browser | undefined;
  let server: Awaited<ReturnType<typeof serveStatic>> | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-tracks-'));
    input = path.join(dir, 'film.mp4');
    const embedded = path.join(dir, 'embedded.srt');
    await writeFile(
      embedded,
      '1\n00:00:00,500 --> 00:00:02,000\nHello\n\n2\n00:00:02,500 --> 00:00:03,500\nAgain\n',
    );
    // A sidecar as Windows editors write it: a byte-order mark, CRLF, and a last cue running past the end.
    sidecar = path.join(dir, 'film.fr.srt');
    await writeFile(
      sidecar,
      '\uFEFF1\r\n00:00:00,200 --> 00:00:01,800\r\n<i>Bonjour</i> à tous\r\n\r\n2\r\n00:00:03,000 --> 00:00:09,000\r\nAu revoir\r\n',
    );
    const tone = (f: number) => ['-f', 'lavfi', '-i', `sine=frequency=${f}:sample_rate=48000:duration=4`];
    await run('ffmpeg', [
      ...['-v', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=4'],
      ...tone(440),
      ...tone(660),
      ...tone(880),
      ...['-i', embedded],
      ...['-map', '0', '-map', '1', '-map', '2', '-map', '3', '-map', '4'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-c:s', 'mov_text'],
      ...['-metadata:s:s:0', 'language=eng'],
      ...['-filter:a:1', 'pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0'],
      ...['-metadata:s:a:0', 'language=eng', '-metadata:s:a:1', 'language=fre'],
      ...['-metadata:s:a:2', 'language=eng', '-disposition:a:2', 'visual_impaired'],
      ...['-disposition:a:0', 'default', '-disposition:a:1', '0'],
      input,
    ]);
    // The same film as Matroska with its subtitles as SRT (subrip), as a .mkv from a disc rip carries them.
    mkv = path.join(dir, 'film.mkv');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', input, '-map', '0', '-c', 'copy', '-c:s', 'srt', mkv]);
    pkg = path.join(dir, 'out');
    report = path.join(dir, 'report.json');
    const args = ['--preset', 'ultrafast', '-q', '--subtitles', `fr=${sidecar}`];
    await run(process.execPath, [...cli, 'convert', mkv, '-o', pkg, ...args, '--report', report], {
      env: { ...process.env, LADDER: '180:300k', SEGMENT_DURATION: '2' },
    });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the MPD: an AdaptationSet per track with its language, one main, the description marked', async () => {
    await checkDashPackage(pkg, { heights: [180], decode: false });
    const mpd = await readFile(path.join(pkg, 'manifest.mpd'), 'utf8');
    const sets = [
      ...mpd.matchAll(/<AdaptationSet[^>]*contentType="audio"[^>]*>[\s\S]*?<\/AdaptationSet>/g),
    ].map((m) => m[0]);
    assert.deepEqual(
      sets.map((s) => /lang="([^"]+)"/.exec(s)?.[1]),
      ['en', 'fr', 'en'],
    );
    assert.equal(sets.filter((s) => /<Role [^>]*value="main"/.test(s)).length, 1);
    assert.match(sets[0]!, /value="main"/);
    assert.match(
      sets[2]!,
      /<Accessibility schemeIdUri="urn:tva:metadata:cs:AudioPurposeCS:2007" value="1"\/>/,
    );
    assert.match(sets[2]!, /<Role [^>]*value="description"/);
    assert.match(sets[1]!, /AudioChannelConfiguration[^>]*value="2"/, '5.1 encoded to stereo');
    // The names of the players' menus, as HLS's NAME (the packager writes none: added after it).
    assert.deepEqual(
      sets.map((s) => /<Label>([^<]*)<\/Label>/.exec(s)?.[1]),
      ['English', 'Français', 'English (audio description)'],
    );
  });

  test('subtitles: the embedded SRT and the sidecar SRT, WebVTT in fMP4 for DASH and WebVTT for HLS', async () => {
    const mpd = await readFile(path.join(pkg, 'manifest.mpd'), 'utf8');
    const texts = [
      ...mpd.matchAll(/<AdaptationSet[^>]*contentType="text"[^>]*>[\s\S]*?<\/AdaptationSet>/g),
    ].map((m) => m[0]);
    assert.deepEqual(
      texts.map((s) => [/lang="([^"]+)"/.exec(s)?.[1], /codecs="([^"]+)"/.exec(s)?.[1]]),
      [
        ['en', 'wvtt'],
        ['fr', 'wvtt'],
      ],
    );
    assert.deepEqual(
      texts.map((s) => /<Label>([^<]*)<\/Label>/.exec(s)?.[1]),
      ['English', 'Français'],
    );
    const master = await readFile(path.join(pkg, 'master.m3u8'), 'utf8');
    const subs = master.split('\n').filter((l) => l.startsWith('#EXT-X-MEDIA:TYPE=SUBTITLES'));
    assert.deepEqual(subs.map((l) => /LANGUAGE="([^"]+)"/.exec(l)?.[1]).sort(), ['en', 'fr']);
    assert.match(master, /SUBTITLES="subtitles"/);
    const frLine = subs.find((l) => l.includes('LANGUAGE="fr"'))!;
    const playlist = path.join(pkg, /URI="([^"]+)"/.exec(frLine)![1]!);
    const segments = (await readFile(playlist, 'utf8')).split('\n').filter((l) => l.endsWith('.vtt'));
    const cues = (
      await Promise.all(segments.map((s) => readFile(path.join(path.dirname(playlist), s), 'utf8')))
    ).join('\n');
    assert.match(cues, /<i>Bonjour<\/i> à tous/);
    // The video ends at 4 s (4.021 s in the Matroska remux: its first frame is shown at 0.021 s).
    assert.match(cues, /00:00:03\.000 --> 00:00:04\.0\d\d /, 'the cue past the end is clipped to the video');
    const output = JSON.parse(await readFile(report, 'utf8')) as { subtitles: unknown[] };
    assert.deepEqual(output.subtitles, [
      { language: 'en', label: 'English', forced: false, source: 'stream 4' },
      { language: 'fr', label: 'Français', forced: false, source: sidecar },
    ]);
  });

  test('the master playlist: one audio group, LANGUAGE, NAME and CHANNELS, exactly one DEFAULT=YES', async () => {
    const master = await readFile(path.join(pkg, 'master.m3u8'), 'utf8');
    const audio = master.split('\n').filter((l) => l.startsWith('#EXT-X-MEDIA:TYPE=AUDIO'));
    assert.equal(audio.length, 3);
    assert.ok(audio.every((l) => /GROUP-ID="audio"/.test(l) && /CHANNELS="\d"/.test(l)));
    const rows = audio.map((l) =>
      [/LANGUAGE="([^"]+)"/, /NAME="([^"]+)"/, /DEFAULT=(\w+)/].map((re) => re.exec(l)?.[1]).join(' | '),
    );
    assert.deepEqual(rows.sort(), [
      'en | English (audio description) | NO',
      'en | English | YES',
      'fr | Français | NO',
    ]);
    const described = audio.filter((l) => /CHARACTERISTICS="public.accessibility.describes-video"/.test(l));
    assert.deepEqual(described.length, 1);
    assert.match(described[0]!, /NAME="English \(audio description\)"/);
  });

  test('Shaka Player (DASH and HLS), hls.js and dash.js list the languages and play; Shaka after switching to French', async () => {
    server = await serveStatic({ pkg, lib: modules });
    browser = await launchBrowser();
    const { page } = browser;
    await withScreenshot(page, 'tracks-shaka', async () => {
      await page.setContent('<video muted></video>');
      await page.addScriptTag({ url: `${server!.url}/lib/shaka-player/dist/shaka-player.compiled.js` });
      await page.addScriptTag({ url: `${server!.url}/lib/hls.js/dist/hls.min.js` });
      await page.addScriptTag({ url: `${server!.url}/lib/dashjs/dist/modern/umd/dash.all.min.js` });
      const shakaPlays = (manifest: string) =>
        page.evaluate(async (url) => {
          // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a player's global, from a script tag
          const w = window as unknown as { shaka: any };
          const video = document.querySelector('video')!;
          const player = new w.shaka.Player();
          await player.attach(video);
          await player.load(url).catch((e: { code?: number }) => {
            throw new Error(`Shaka Player error ${e.code}`);
          });
          type Track = {
            language: string;
            primary: boolean;
            active: boolean;
            accessibilityPurpose: string | null;
          };
          const tracks = player.getAudioTracks() as Track[];
          const languages = tracks
            .map(
              (t) =>
                `${t.language}${t.primary ? ':main' : ''}${t.accessibilityPurpose ? `:${t.accessibilityPurpose}` : ''}`,
            )
            .sort();
          const textLanguages = (player.getTextTracks() as Track[]).map((t) => t.language).sort();
          player.selectAudioTrack(tracks.find((t) => t.language === 'fr'));
          await video.play();
          // A loop, not a named function: tsx would wrap one in a helper the page does not have.
          const started = Date.now();
          while (video.currentTime <= 1.5) {
            if (Date.now() - started > 20_000) throw new Error(`stuck at ${video.currentTime} s`);
            await new Promise((r) => setTimeout(r, 100));
          }
          const playing = (player.getAudioTracks() as Track[]).find((t) => t.active)?.language;
          await player.destroy();
          return { languages, playing, textLanguages };
        }, manifest);
      const dash = await shakaPlays(`${server!.url}/pkg/manifest.mpd`);
      assert.deepEqual(dash.languages, ['en:main', 'en:visually impaired', 'fr']);
      assert.equal(dash.playing, 'fr');
      assert.deepEqual(dash.textLanguages, ['en', 'fr']);
      // HLS says the audio description by CHARACTERISTICS, and its default by DEFAULT=YES.
      const hlsInShaka = await shakaPlays(`${server!.url}/pkg/master.m3u8`);
      assert.deepEqual(
        hlsInShaka.languages.map((l) => l.split(':')[0]),
        ['en', 'en', 'fr'],
        hlsInShaka.languages.join(', '),
      );
      assert.equal(hlsInShaka.playing, 'fr');
      assert.deepEqual(hlsInShaka.textLanguages, ['en', 'fr']);

      const hls = await page.evaluate(async (base) => {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a player's global, from a script tag
        const w = window as unknown as { Hls: any };
        const video = document.querySelector('video')!;
        const hls = new w.Hls();
        const parsed = new Promise<void>((resolve, reject) => {
          hls.on(w.Hls.Events.MANIFEST_PARSED, () => resolve());
          hls.on(w.Hls.Events.ERROR, (_: unknown, e: { fatal: boolean; details: string }) => {
            if (e.fatal) reject(new Error(e.details));
          });
        });
        hls.loadSource(`${base}/pkg/master.m3u8`);
        hls.attachMedia(video);
        await parsed;
        const tracks = (hls.audioTracks as { lang: string; default: boolean }[]).map(
          (t) => `${t.lang}${t.default ? '*' : ''}`,
        );
        const subtitles = (hls.subtitleTracks as { lang: string }[]).map((t) => t.lang);
        await video.play();
        const started = Date.now();
        while (video.currentTime <= 1) {
          if (Date.now() - started > 20_000) throw new Error(`hls.js stuck at ${video.currentTime} s`);
          await new Promise((r) => setTimeout(r, 100));
        }
        hls.destroy();
        return { tracks, subtitles };
      }, server!.url);
      assert.deepEqual(hls.tracks.sort(), ['en', 'en*', 'fr']);
      assert.deepEqual(hls.subtitles.sort(), ['en', 'fr']);

      const dashjs = await page.evaluate(async (base) => {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a player's global, from a script tag
        const w = window as unknown as { dashjs: any };
        const video = document.querySelector('video')!;
        const player = w.dashjs.MediaPlayer().create();
        const ready = new Promise<void>((resolve, reject) => {
          player.on(w.dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => resolve());
          player.on(w.dashjs.MediaPlayer.events.ERROR, (e: unknown) => reject(new Error(JSON.stringify(e))));
        });
        player.initialize(video, `${base}/pkg/manifest.mpd`, false);
        await ready;
        // No named function here: tsx would wrap it in a helper the page does not have.
        const result = Object.fromEntries(
          ['audio', 'text'].map((kind) => [
            kind,
            (player.getTracksFor(kind) as { lang: string }[]).map((t) => t.lang).sort(),
          ]),
        );
        player.play();
        const started = Date.now();
        while (video.currentTime <= 1) {
          if (Date.now() - started > 20_000) throw new Error(`dash.js stuck at ${video.currentTime} s`);
          await new Promise((r) => setTimeout(r, 100));
        }
        player.destroy();
        return result;
      }, server!.url);
      assert.deepEqual(dashjs, { audio: ['en', 'en', 'fr'], text: ['en', 'fr'] });
    });
  });

  test('encrypted: every audio track takes the audio key, text tracks stay in the clear; French plays with ClearKey', async () => {
    const hex = () => randomBytes(16).toString('hex');
    const video = { key_id: hex(), key: hex() };
    const audio = { key_id: hex(), key: hex() };
    const keysFile = path.join(dir, 'keys.json');
    await writeFile(keysFile, JSON.stringify({ ...video, keys: [{ label: 'audio', ...audio }] }), {
      mode: 0o600,
    });
    const enc = path.join(dir, 'enc');
    const args = ['--preset', 'ultrafast', '-q', '--subtitles', `fr=${sidecar}`, '--encryption', keysFile];
    await run(process.execPath, [...cli, 'convert', mkv, '-o', enc, ...args], {
      env: { ...process.env, LADDER: '180:300k', SEGMENT_DURATION: '2' },
    });
    const kid = (h: string) =>
      `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    const mpd = await readFile(path.join(enc, 'manifest.mpd'), 'utf8');
    const sets = (type: string) =>
      [
        ...mpd.matchAll(
          new RegExp(`<AdaptationSet[^>]*contentType="${type}"[^>]*>[\\s\\S]*?</AdaptationSet>`, 'g'),
        ),
      ].map((m) => m[0]);
    assert.equal(sets('audio').length, 3);
    for (const set of sets('audio')) assert.ok(set.includes(`cenc:default_KID="${kid(audio.key_id)}"`), set);
    assert.equal(sets('text').length, 2);
    for (const set of sets('text')) assert.ok(!set.includes('ContentProtection'), set);
    const master = await readFile(path.join(enc, 'master.m3u8'), 'utf8');
    const uris = (type: string) =>
      master
        .split('\n')
        .filter((l) => l.startsWith(`#EXT-X-MEDIA:TYPE=${type}`))
        .map((l) => /URI="([^"]+)"/.exec(l)![1]!);
    for (const uri of uris('AUDIO'))
      assert.match(await readFile(path.join(enc, uri), 'utf8'), /#EXT-X-KEY:METHOD=SAMPLE-AES/, uri);
    for (const uri of uris('SUBTITLES'))
      assert.doesNotMatch(await readFile(path.join(enc, uri), 'utf8'), /#EXT-X-KEY/, uri);

    // A page of the server's own origin: EME wants a secure context (127.0.0.1 is one, about:blank is not).
    await writeFile(path.join(dir, 'player.html'), '<!doctype html><video muted></video>');
    const encServer = await serveStatic({ root: dir, lib: modules });
    browser ??= await launchBrowser();
    const page = await browser.context.newPage();
    try {
      await page.goto(`${encServer.url}/root/player.html`);
      await page.addScriptTag({ url: `${encServer.url}/lib/shaka-player/dist/shaka-player.compiled.js` });
      const playing = await page.evaluate(
        async ({ url, clearKeys }) => {
          // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a player's global, from a script tag
          const w = window as unknown as { shaka: any };
          const element = document.querySelector('video')!;
          const player = new w.shaka.Player();
          player.configure({ drm: { clearKeys } });
          await player.attach(element);
          await player.load(url).catch((e: { code?: number }) => {
            throw new Error(`Shaka Player error ${e.code}`);
          });
          const tracks = player.getAudioTracks() as { language: string; active: boolean }[];
          player.selectAudioTrack(tracks.find((t) => t.language === 'fr'));
          await element.play();
          const started = Date.now();
          while (element.currentTime <= 1.5) {
            if (Date.now() - started > 20_000) throw new Error(`stuck at ${element.currentTime} s`);
            await new Promise((r) => setTimeout(r, 100));
          }
          const active = (player.getAudioTracks() as { language: string; active: boolean }[]).find(
            (t) => t.active,
          )?.language;
          await player.destroy();
          return active;
        },
        {
          url: `${encServer.url}/root/enc/manifest.mpd`,
          clearKeys: { [video.key_id]: video.key, [audio.key_id]: audio.key },
        },
      );
      assert.equal(playing, 'fr');
    } finally {
      await page.close();
      await encServer.close();
    }
  });

  test('convert refuses a subtitle file that is not one, or is missing, and leaves nothing', async () => {
    const png = path.join(dir, 'cover.srt');
    await writeFile(png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]));
    for (const [file, why] of [
      [png, /conversion failed: the subtitle file ".*cover\.srt" cannot be used: it is a binary file/],
      [path.join(dir, 'none.srt'), /--subtitles fr=.*none\.srt: no such file/],
    ] as const) {
      const out = path.join(dir, 'refused');
      const failed = await run(process.execPath, [
        ...cli,
        'convert',
        input,
        '-o',
        out,
        '-q',
        '--subtitles',
        `fr=${file}`,
      ]).then(
        () => assert.fail('convert succeeded'),
        (err: { code: number; stderr: string }) => err,
      );
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, why);
      assert.deepEqual(await readdir(out).catch(() => []), [], 'nothing in the output directory');
    }
  });

  test('a task of the worker packages the same, and the dashboard offers its audio languages and subtitles', async () => {
    await ensureDashboardBuilt();
    const svc = await startTestService({ LADDER: '180:300k', SEGMENT_DURATION: '2' });
    try {
      await copyFile(input, path.join(svc.inputDir, 'film.mp4'));
      await copyFile(sidecar, path.join(svc.inputDir, 'film.fr.srt'));
      const id = await submit(svc.url, 'film.mp4', {
        subtitles: [{ filename: 'film.fr.srt', language: 'fr', label: 'Français (SDH)' }],
        default_audio_language: 'fr',
      });
      const { doc } = await waitForFinal(svc.url, id);
      assert.equal(doc.status, 'completed', String(doc.error));
      const output = doc.output as unknown as {
        audio_tracks: { language: string; default: boolean }[];
        subtitles: { label: string }[];
      };
      assert.deepEqual(
        output.audio_tracks.map((a) => `${a.language}${a.default ? '*' : ''}`),
        ['en', 'fr*', 'en'],
      );
      assert.deepEqual(
        output.subtitles.map((s) => s.label),
        ['English', 'Français (SDH)'],
      );
      browser ??= await launchBrowser();
      const { page } = browser;
      await withScreenshot(page, 'tracks-dashboard', async () => {
        await page.goto(svc.url);
        await page.locator(`li.task[data-task-id="${id}"]`).getByRole('button', { name: /^Play/ }).click();
        await page.locator('#player-panel[data-loaded="dash"]').waitFor({ timeout: 30_000 });
        const options = (id: string) => page.locator(`#${id} option`).allTextContents();
        assert.deepEqual((await options('audio-track')).sort(), [
          'English',
          'English (audio description)',
          'Français',
        ]);
        // The request's label, from the MPD's Label.
        assert.deepEqual(await options('text-track'), ['Off', 'English', 'Français (SDH)']);
        await page.getByLabel('Subtitles').selectOption({ label: 'Français (SDH)' });
        await page.getByLabel('Audio').selectOption({ label: 'English' });
        assert.equal(await page.locator('#player-error').textContent(), '');
      });
    } finally {
      await svc.close();
    }
  });
});
