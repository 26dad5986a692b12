import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { TaskFailure } from '../../src/domain/failures.js';
import { createLogger } from '../../src/process/logger.js';
import { parseMasterPlaylist, parseMediaPlaylist, resolveUri } from '../../src/manifests/hls.js';
import { parseManifest } from '../../src/manifests/mpd.js';
import { psnrFromStats, ssimFromStats } from '../../src/qc/quality.js';
import { spansFrom } from '../../src/qc/source-durations.js';
import { parseXml } from '../../src/manifests/xml.js';
import { SqliteTaskQueue } from '../../src/queue/sqlite-queue.js';
import { packagePrefixFor, resolveEncodeSettings } from '../../src/jobs/encode-settings.js';
import { EtaEstimator, StageClock } from '../../src/jobs/stage-clock.js';

describe('profiles and per-request settings', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-profiles-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('built-in profiles: default follows LADDER, seed is fixed, high adds 1080p', () => {
    const config = loadConfig({ LADDER: '240:400k,480:1200k' });
    assert.deepEqual(Object.keys(config.profiles), ['default', 'seed', 'high']);
    assert.deepEqual(config.profiles.default!.ladder, config.encode.ladder);
    assert.deepEqual(
      config.profiles.high!.ladder.map((r) => r.height),
      [240, 480, 1080],
    );
    const seed = resolveEncodeSettings(config, { videoFilename: 'a.mp4', ladder: 'seed' });
    assert.deepEqual(seed.ladder, [
      { height: 360, bitrate: 600_000 },
      { height: 720, bitrate: 3_000_000 },
    ]);
    assert.equal(seed.preset, 'ultrafast');
    assert.equal(seed.segmentDuration, 3);
    assert.equal(seed.maxrateFactor, 1);
    assert.equal(seed.bufsizeFactor, 1);
    assert.deepEqual(
      resolveEncodeSettings(config, { videoFilename: 'a.mp4', profile: 'seed' }),
      seed,
      '"profile": "seed" is "ladder": "seed"',
    );
    const seedRungs = resolveEncodeSettings(config, {
      videoFilename: 'a.mp4',
      profile: 'seed',
      ladder: [{ height: 480, bitrate: 1_000_000 }],
    });
    assert.deepEqual(
      seedRungs.ladder,
      [{ height: 480, bitrate: 1_000_000 }],
      'a ladder list overrides the profile',
    );
    assert.equal(seedRungs.preset, 'ultrafast', 'and keeps the rest of it');
    assert.throws(
      () => resolveEncodeSettings(config, { videoFilename: 'a.mp4', profile: 'seed', ladder: 'high' }),
      /name the profile once/,
    );
    assert.throws(
      () => resolveEncodeSettings(config, { videoFilename: 'a.mp4', profile: 'nope' }),
      /unknown profile "nope"/,
    );
    const overridden = resolveEncodeSettings(config, {
      videoFilename: 'a.mp4',
      ladder: 'seed',
      segmentDuration: 6,
      formats: ['dash'],
    });
    assert.equal(overridden.segmentDuration, 6);
    assert.deepEqual(overridden.formats, ['dash']);
    assert.equal(overridden.preset, 'ultrafast');
    const custom = resolveEncodeSettings(config, {
      videoFilename: 'a.mp4',
      ladder: [{ height: 144, bitrate: 150_000 }],
    });
    assert.deepEqual(custom.ladder, [{ height: 144, bitrate: 150_000 }]);
    assert.equal(custom.preset, config.encode.preset);
    assert.throws(
      () => resolveEncodeSettings(config, { videoFilename: 'a.mp4', ladder: 'toString' }),
      (err: unknown) => err instanceof TaskFailure && err.code === 'invalid_input',
      'inherited object keys are not profiles',
    );
  });

  test('PROFILES_FILE adds and overrides profiles', async () => {
    const file = path.join(dir, 'profiles.json');
    await writeFile(
      file,
      JSON.stringify({
        mobile: { description: 'Phones', ladder: '240:400k,360:700k', segment_duration: 2, cbr: true },
        archive: { ladder: [{ height: 1080, bitrate: 8_000_000 }], preset: 'slow', formats: ['dash'] },
        seed: { ladder: '360:500k' },
      }),
    );
    const config = loadConfig({ PROFILES_FILE: file });
    assert.deepEqual(Object.keys(config.profiles).sort(), ['archive', 'default', 'high', 'mobile', 'seed']);
    const mobile = resolveEncodeSettings(config, { videoFilename: 'a.mp4', ladder: 'mobile' });
    assert.deepEqual(
      mobile.ladder.map((r) => r.height),
      [240, 360],
    );
    assert.equal(mobile.segmentDuration, 2);
    assert.equal(mobile.maxrateFactor, 1);
    const archive = resolveEncodeSettings(config, { videoFilename: 'a.mp4', ladder: 'archive' });
    assert.equal(archive.preset, 'slow');
    assert.deepEqual(archive.formats, ['dash']);
    assert.deepEqual(config.profiles.seed!.ladder, [{ height: 360, bitrate: 500_000 }]);
  });

  test('a bad PROFILES_FILE is a configuration error naming each problem', async () => {
    const file = path.join(dir, 'bad.json');
    await writeFile(
      file,
      JSON.stringify({
        'Bad Name': { ladder: '360:800k' },
        fast: { ladder: '360:800k', preset: 'warp' },
        tiny: { ladder: '16:10k' },
        odd: { ladder: '360:800k', colour: 'blue' },
      }),
    );
    assert.throws(
      () => loadConfig({ PROFILES_FILE: file }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const text = err.problems.join('\n');
        assert.match(text, /profile "Bad Name": names are lower-case/);
        assert.match(text, /profile "fast": preset must be one of/);
        assert.match(text, /profile "tiny": ladder entry "16:10k" is out of range/);
        assert.match(text, /profile "odd": unknown field\(s\) colour/);
        return true;
      },
    );
    assert.throws(() => loadConfig({ PROFILES_FILE: path.join(dir, 'missing.json') }), ConfigError);
  });

  test('output_prefix goes below OUTPUT_PREFIX; unsafe ones are refused', () => {
    const config = loadConfig({ OUTPUT_PREFIX: 'vod/' });
    assert.equal(packagePrefixFor(config, { videoFilename: 'in/clip.mp4' }), 'vod/in/clip');
    assert.equal(packagePrefixFor(config, { videoFilename: 'in/clip.mp4', outputPrefix: 'c/7' }), 'vod/c/7');
    for (const bad of ['../x', 'a/../../b', '/root', 'a\\b', ''])
      assert.throws(
        () => packagePrefixFor(config, { videoFilename: 'a.mp4', outputPrefix: bad }),
        TaskFailure,
        bad,
      );
  });
});

describe('ETA and stage timings', () => {
  test('the ETA extrapolates the speed measured while encoding', () => {
    let now = 0;
    const eta = new EtaEstimator(() => now);
    assert.equal(eta.update(0.02, false), undefined, 'nothing measured before encoding');
    assert.equal(eta.update(0.05, true), undefined, 'the first encode report only starts the clock');
    now = 10_000;
    // 0.45 of the task in 10 s: the remaining 0.5 takes about 11 s.
    assert.equal(eta.update(0.5, true), 11);
    now = 14_000;
    assert.equal(eta.update(0.96, false), 7, 'after encoding it counts down');
    now = 40_000;
    assert.equal(eta.update(0.99, false), 0, 'never negative');
  });

  test('stage timings add up per stage, in order, with a total', () => {
    let now = 1000;
    const clock = new StageClock(() => now);
    clock.enter('fetch');
    now += 500;
    clock.enter('encode');
    now += 2000;
    clock.enter('encode');
    now += 1000;
    clock.enter('publish');
    now += 250;
    clock.stop();
    now += 100;
    assert.deepEqual(clock.seconds(), { fetch: 0.5, encode: 3, publish: 0.25, total: 3.85 });
  });
});

describe('manifest and playlist readers', () => {
  test('SegmentTemplate with a fixed duration, inherited from the AdaptationSet, with formatted numbers', () => {
    const mpd = parseManifest(`<?xml version="1.0"?>
      <!-- a comment <Period> that must be ignored -->
      <MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT0H0M9.5S">
        <Period>
          <AdaptationSet mimeType="video/mp4" width="640" height="360">
            <SegmentTemplate timescale="1000" duration="4000" startNumber="0"
              initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/seg-$Number%05d$.m4s"/>
            <Representation id="v&amp;1" bandwidth="800000"/>
          </AdaptationSet>
        </Period>
      </MPD>`);
    assert.equal(mpd.duration, 9.5);
    const [rep] = mpd.representations;
    assert.equal(rep!.contentType, 'video');
    assert.equal(rep!.init, 'v&1/init.mp4');
    assert.deepEqual(
      rep!.segments.map((s) => [s.url, s.start, s.duration]),
      [
        ['v&1/seg-00000.m4s', 0, 4],
        ['v&1/seg-00001.m4s', 4, 4],
        ['v&1/seg-00002.m4s', 8, 1.5],
      ],
    );
  });

  test('SegmentTimeline with repeats and $Time$', () => {
    const mpd = parseManifest(`<MPD type="static"><Period><AdaptationSet contentType="audio">
      <Representation id="a" bandwidth="1">
        <SegmentTemplate timescale="10" media="a/$Time$.m4s">
          <SegmentTimeline><S t="5" d="20" r="2"/><S d="7"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation></AdaptationSet></Period></MPD>`);
    assert.deepEqual(
      mpd.representations[0]!.segments.map((s) => s.url),
      ['a/5.m4s', 'a/25.m4s', 'a/45.m4s', 'a/65.m4s'],
    );
  });

  test('malformed XML is refused', () => {
    assert.throws(() => parseXml('<MPD><Period></MPD>'), /unexpected closing tag/);
    assert.throws(() => parseXml('<MPD><Period>'), /not closed/);
    assert.throws(() => parseXml('<!DOCTYPE x [<!ENTITY e "boom">]><MPD/>'), /DOCTYPE/);
    assert.throws(() => parseXml('<a/><b/>'), /exactly one root/);
    assert.throws(() => parseManifest('<Manifest/>'), /not <MPD>/);
  });

  test('HLS playlists: variants, renditions, segments; URIs resolved inside the package', () => {
    const master = parseMasterPlaylist(
      '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="audio/p.m3u8"\n' +
        '#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360\nv/p.m3u8\n',
      'hls/master.m3u8',
    );
    assert.deepEqual(master.variants, [{ uri: 'hls/v/p.m3u8', resolution: { width: 640, height: 360 } }]);
    assert.deepEqual(master.media, [{ uri: 'hls/audio/p.m3u8', type: 'AUDIO' }]);
    const media = parseMediaPlaylist(
      '#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.000,\n1.m4s\n#EXTINF:1.5,\n2.m4s?x=1\n#EXT-X-ENDLIST\n',
      'v/p.m3u8',
    );
    assert.equal(media.map, 'v/init.mp4');
    assert.equal(media.ended, true);
    assert.deepEqual(
      media.segments.map((s) => [s.url, s.start, s.duration]),
      [
        ['v/1.m4s', 0, 4],
        ['v/2.m4s', 4, 1.5],
      ],
    );
    assert.equal(resolveUri('v/p.m3u8', 'https://cdn.example/x.m4s'), '!https://cdn.example/x.m4s');
    assert.equal(resolveUri('p.m3u8', '../x.m4s'), '!../x.m4s');
    assert.throws(() => parseMediaPlaylist('1.m4s\n', 'p.m3u8'), /#EXTM3U/);
    assert.throws(() => parseMediaPlaylist('#EXTM3U\n1.m4s\n', 'p.m3u8'), /no EXTINF/);
  });

  test('source spans and quality statistics', () => {
    const spans = spansFrom(
      {
        packets: [
          { stream_index: 0, pts_time: '0.000', duration_time: '0.1' },
          { stream_index: 1, pts_time: '0.050', duration_time: '0.0213' },
          { stream_index: 0, pts_time: '0.200', duration_time: '1.5' },
          { stream_index: 0, pts_time: '0.100', duration_time: '0.1' },
          { stream_index: 1, pts_time: '1.000', duration_time: '0.0213' },
        ],
      },
      { video: 0, audio: 1 },
    );
    assert.ok(Math.abs(spans.video.duration - 1.7) < 1e-9);
    assert.equal(spans.video.lastSample, 1.5);
    assert.ok(Math.abs(spans.audio!.duration - 0.9713) < 1e-9);
    // A raw elementary stream lists no timestamps: its frames are laid end to end, as its demuxer does.
    const raw = { stream_index: 0, pts_time: 'N/A', duration_time: '0.040000' };
    assert.ok(Math.abs(spansFrom({ packets: [raw, raw, raw] }, { video: 0 }).video.end - 0.12) < 1e-9);
    assert.equal(psnrFromStats('n:1 mse_avg:1.00 psnr_avg:48\nn:2 mse_avg:3.00 psnr_avg:43\n'), 45.12);
    assert.equal(psnrFromStats('n:1 mse_avg:0.00\n'), 100);
    assert.equal(ssimFromStats('n:1 Y:0.9 U:0.9 V:0.9 All:0.95 (13)\nn:2 All:0.97 (15)\n'), 0.96);
  });
});

describe('SQLite queue: positions, ETA, and databases from before', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dvc-sqlite-op-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a database without the eta_seconds column is upgraded in place', async () => {
    const file = path.join(dir, 'old.db');
    const db = new Database(file);
    db.exec(`CREATE TABLE tasks (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
      request TEXT NOT NULL, status TEXT NOT NULL, stage TEXT, progress REAL NOT NULL DEFAULT 0,
      error_code TEXT, error_message TEXT, output TEXT, cancelled INTEGER NOT NULL DEFAULT 0,
      cancel_requested INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
      run_after INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_expires INTEGER,
      idempotency_key TEXT UNIQUE, request_hash TEXT, callback TEXT, created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL)`);
    db.prepare(
      `INSERT INTO tasks (id, request, status, created_at, updated_at) VALUES ('old-1', '{"video_filename":"a.mp4"}', 'queued', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')`,
    ).run();
    db.close();
    const queue = new SqliteTaskQueue({
      path: file,
      leaseMs: 5000,
      maxAttempts: 1,
      logger: createLogger('silent'),
    });
    try {
      const { task } = await queue.submit({ videoFilename: 'b.mp4' });
      assert.equal(await queue.position('old-1'), 1);
      assert.equal(await queue.position(task.id), 2);
      assert.equal(await queue.position('nope'), undefined);
      assert.deepEqual(
        await queue.counts(),
        { queued: 2, processing: 0, completed: 0, failed: 0 },
        'old rows counted',
      );
      await queue.cancel('old-1');
      assert.deepEqual(await queue.counts(), { queued: 1, processing: 0, completed: 0, failed: 1 });
    } finally {
      await queue.close();
    }
    // The counts kept by triggers agree with the rows themselves.
    const check = new Database(file, { readonly: true });
    try {
      const rows = check
        .prepare('SELECT status, COUNT(*) AS n FROM tasks GROUP BY status ORDER BY status')
        .all();
      const kept = check.prepare('SELECT status, n FROM task_counts WHERE n > 0 ORDER BY status').all();
      assert.deepEqual(kept, rows);
    } finally {
      check.close();
    }
  });

  test('the ETA a handler reports is shown while processing, and gone afterwards', async () => {
    const queue = new SqliteTaskQueue({
      path: path.join(dir, 'eta.db'),
      leaseMs: 5000,
      maxAttempts: 1,
      logger: createLogger('silent'),
    });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let worker: { close(graceMs?: number): Promise<void> } | undefined;
    const reported = new Promise<void>((resolve) => {
      worker = queue.startWorker(
        async (_task, ctx) => {
          ctx.reportProgress('encode', 40, { etaSeconds: 12 });
          resolve();
          await held;
          return {
            storage: 'local',
            prefix: 'x',
            poster: { key: 'x/poster.jpg' },
            renditions: [],
            audio: false,
            duration: 1,
            files: 1,
            bytes: 1,
          };
        },
        { concurrency: 1 },
      );
    });
    try {
      const { task } = await queue.submit({ videoFilename: 'c.mp4' });
      await reported;
      const running = await queue.get(task.id);
      assert.equal(running?.status, 'processing');
      assert.equal(running?.etaSeconds, 12);
      assert.equal(await queue.position(task.id), undefined, 'a running task has no place in line');
      release();
      for (let i = 0; i < 100 && (await queue.get(task.id))?.status !== 'completed'; i++)
        await new Promise((r) => setTimeout(r, 20));
      const done = await queue.get(task.id);
      assert.equal(done?.status, 'completed');
      assert.equal(done?.etaSeconds, undefined);
    } finally {
      release();
      await worker?.close();
      await queue.close();
    }
  });
});
