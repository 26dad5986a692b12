import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { toStatusDocument } from '../../src/api/status-document.js';
import {
  EncodeRequestSchema,
  type TaskRequest as WireTaskRequest,
} from '../../src/domain/schemas/encode-request.js';
import { PlanDocumentSchema } from '../../src/domain/schemas/plan-document.js';
import { StatusDocumentSchema, type StatusDocument } from '../../src/domain/schemas/status-document.js';
import { camelCase, fromWire, snakeCase, toWire, type Domain } from '../../src/domain/schemas/wire.js';
import {
  requestHash,
  type TaskOutput,
  type TaskRequest,
  type WireTaskOutput,
} from '../../src/domain/task.js';
import { createLogger } from '../../src/process/logger.js';
import { SqliteTaskQueue } from '../../src/queue/sqlite-queue.js';
import { recordFromStored, recordToStored } from '../../src/queue/stored-json.js';

const wireRequest: WireTaskRequest = {
  video_filename: 'in/clip.mp4',
  callback_url: 'https://example.com/cb',
  segment_duration: 4,
  video_codecs: ['h264', 'av1'],
  audio_tracks: 'first',
  default_audio_language: 'fr',
  subtitles: [{ filename: 'subs/fr.srt', language: 'fr', forced: true }],
  metadata: { user_id: 7, 'Mixed-Key': { nested_key: [{ a_b: 1 }] }, camelKey: true },
  encryption: {
    key_id: 'a'.repeat(32),
    keys: [{ label: 'audio', key_id: 'b'.repeat(32), key: 'c'.repeat(32) }],
    protection_systems: ['widevine'],
    hls_key_uri: 'https://keys.example/k',
  },
};

const wireOutput: WireTaskOutput = {
  storage: 's3',
  bucket: 'b',
  prefix: 'vod/clip',
  media_prefix: 'vod/clip/m-1',
  manifest: { key: 'vod/clip/manifest.mpd' },
  hls_master: { key: 'vod/clip/master.m3u8', url: 'https://cdn/x' },
  poster: { key: 'vod/clip/poster.jpg' },
  renditions: [{ name: 'video_360p', codec: 'h264', width: 640, height: 360, bitrate: 600_000 }],
  audio: true,
  audio_tracks: [{ language: 'fr', label: 'Français', channels: 2, default: true, audio_description: false }],
  duration: 10,
  files: 9,
  bytes: 1234,
  encryption: {
    scheme: 'cbcs',
    key_ids: [{ label: 'default', key_id: 'a'.repeat(32) }],
    protection_systems: ['common'],
  },
  timings: { fetch: 0.1, total_wall: 3, total: 2 },
  encode_speed: 4.5,
  qc: { passed: true, checks: [{ name: 'segments_exist', passed: true, detail: 'ok' }] },
};

describe('wire ↔ domain casing', () => {
  test('keys are camelCased and back, recursively; the round trip is exact, key order included', () => {
    const request = fromWire(wireRequest);
    assert.equal(request.videoFilename, 'in/clip.mp4');
    assert.equal(request.defaultAudioLanguage, 'fr');
    assert.deepEqual(request.encryption?.keys, [
      { label: 'audio', keyId: 'b'.repeat(32), key: 'c'.repeat(32) },
    ]);
    assert.equal(request.encryption?.hlsKeyUri, 'https://keys.example/k');
    assert.equal(JSON.stringify(toWire<WireTaskRequest>(request)), JSON.stringify(wireRequest));

    const output: TaskOutput = fromWire(wireOutput);
    assert.equal(output.mediaPrefix, 'vod/clip/m-1');
    assert.equal(output.hlsMaster?.url, 'https://cdn/x');
    assert.equal(output.audioTracks?.[0]?.audioDescription, false);
    assert.equal(output.encryption?.keyIds[0]?.keyId, 'a'.repeat(32));
    assert.equal(output.encodeSpeed, 4.5);
    assert.equal(JSON.stringify(toWire<WireTaskOutput>(output)), JSON.stringify(wireOutput));
    // Values are never touched: codes and names stay as they are.
    assert.equal(output.qc?.checks[0]?.name, 'segments_exist');
  });

  test('every field name of the request, status and plan schemas survives the round trip (no `_2`, no capitals)', () => {
    const names = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (node === null || typeof node !== 'object') return;
      const { properties } = node as { properties?: Record<string, unknown> };
      if (properties) for (const name of Object.keys(properties)) names.add(name);
      Object.values(node).forEach(walk);
    };
    [EncodeRequestSchema, StatusDocumentSchema, PlanDocumentSchema].forEach(walk);
    assert.ok(
      names.has('video_filename') && names.has('key_id') && names.has('hls_master'),
      [...names].join(),
    );
    for (const name of names) assert.equal(snakeCase(camelCase(name)), name, name);
  });

  test('metadata and dictionaries keyed by names are copied verbatim, both ways', () => {
    const request = fromWire(wireRequest);
    assert.deepEqual(request.metadata, wireRequest.metadata);
    const output = fromWire(wireOutput);
    assert.deepEqual(output.timings, { fetch: 0.1, total_wall: 3, total: 2 });
    const camelMetadata: TaskRequest = { videoFilename: 'a.mp4', metadata: { camelKey: { innerKey: 1 } } };
    assert.deepEqual(toWire<WireTaskRequest>(camelMetadata).metadata, { camelKey: { innerKey: 1 } });
    const digests = { digests: { 'vod/clip/master.m3u8': 'x', some_key: 'y' }, fileCount: 2 };
    assert.deepEqual(fromWire(digests).digests, digests.digests);
  });

  test('unknown keys follow the same rule; arrays, null and scalars pass through', () => {
    const doc = { some_new_field: { deeper_still: [1, null, { x_y: 'a_b' }] }, plain: 'v', n: null };
    const domain = fromWire(doc);
    assert.deepEqual(domain, {
      someNewField: { deeperStill: [1, null, { xY: 'a_b' }] },
      plain: 'v',
      n: null,
    });
    assert.deepEqual(toWire<typeof doc>(domain), doc);
    assert.equal(camelCase('frame_rate_limit'), 'frameRateLimit');
    assert.equal(snakeCase('frameRateLimit'), 'frame_rate_limit');
    // The type follows the run-time rule.
    const typed: Domain<{ audio_tracks: { source_index: number }[]; metadata: { a_b: 1 } }> = {
      audioTracks: [{ sourceIndex: 1 }],
      metadata: { a_b: 1 },
    };
    assert.ok(typed);
  });

  test('the status document shows the wire casing, whatever the domain holds', () => {
    const doc: StatusDocument = toStatusDocument({
      id: 't1',
      request: fromWire(wireRequest),
      status: 'completed',
      stage: 'done',
      progress: 100,
      output: fromWire(wireOutput),
      attempts: 1,
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:01.000Z',
      callback: { url: 'https://example.com', status: 'failed', attempts: 3, lastError: 'HTTP 500' },
    });
    assert.equal(doc.video_filename, 'in/clip.mp4');
    assert.equal(doc.options.default_audio_language, 'fr');
    assert.deepEqual(doc.options.encryption, {
      key_id: 'a'.repeat(32),
      keys: [{ label: 'audio', key_id: 'b'.repeat(32) }],
      protection_systems: ['widevine'],
      hls_key_uri: 'https://keys.example/k',
    });
    assert.deepEqual(doc.metadata, wireRequest.metadata);
    assert.equal(doc.output?.media_prefix, 'vod/clip/m-1');
    assert.deepEqual(doc.timings, wireOutput.timings);
    assert.equal(doc.encode_speed, 4.5);
    assert.equal(doc.callback?.last_error, 'HTTP 500');
    assert.equal(doc.created_at, '2026-01-01T00:00:00.000Z');
  });

  test('the Idempotency-Key hash is the one of the wire form, as before the domain was camelCase', () => {
    const { metadata: _m, ...wire } = wireRequest;
    const { metadata: _d, ...request } = fromWire(wireRequest);
    // What requestHash computed over the stored (wire) request before.
    const legacy = createHash('sha256').update(JSON.stringify(wire)).digest('hex');
    assert.equal(requestHash(request), legacy);
  });
});

describe('records stored by the previous version', () => {
  test('a BullMQ meta record (camelCase around, wire request and output) reads into the domain', () => {
    const old = JSON.stringify({
      id: 'old-1',
      request: { video_filename: 'a.mp4', output_prefix: 'x/y', metadata: { user_id: 1 } },
      status: 'failed',
      stage: 'cancelled',
      progress: 0,
      error: { code: 'cancelled', message: 'cancelled' },
      cancelled: true,
      attempts: 0,
      createdAt: '2025-01-01T00:00:00.000Z',
      updatedAt: '2025-01-01T00:00:01.000Z',
    });
    const record = recordFromStored(old);
    assert.equal(record.request.videoFilename, 'a.mp4');
    assert.equal(record.request.outputPrefix, 'x/y');
    assert.deepEqual(record.request.metadata, { user_id: 1 });
    assert.equal(record.createdAt, '2025-01-01T00:00:00.000Z');
    // Written back as the previous version wrote it.
    assert.deepEqual(JSON.parse(recordToStored(record)), JSON.parse(old));
  });

  test('an SQLite row written before keeps its request, output and callback readable, and new rows keep its casing', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-wire-'));
    const file = path.join(dir, 'tasks.db');
    const logger = createLogger('silent');
    const queue = new SqliteTaskQueue({ path: file, leaseMs: 5000, maxAttempts: 1, logger });
    try {
      const { task } = await queue.submit({ videoFilename: 'new.mp4', audioTracks: 'first' });
      const db = new Database(file);
      try {
        const row = db.prepare('SELECT request FROM tasks WHERE id = ?').get(task.id) as { request: string };
        assert.deepEqual(JSON.parse(row.request), { video_filename: 'new.mp4', audio_tracks: 'first' });
        db.prepare(
          `UPDATE tasks SET status = 'completed', stage = 'done', progress = 100, request = ?, output = ?, callback = ?
             WHERE id = ?`,
        ).run(
          JSON.stringify({ video_filename: 'old.mp4', default_audio_language: 'fr' }),
          JSON.stringify(wireOutput),
          JSON.stringify({
            url: 'https://example.com',
            status: 'pending',
            attempts: 1,
            next_attempt_at: 'T1',
          }),
          task.id,
        );
      } finally {
        db.close();
      }
      const read = (await queue.get(task.id))!;
      assert.equal(read.request.videoFilename, 'old.mp4');
      assert.equal(read.request.defaultAudioLanguage, 'fr');
      assert.equal(read.output?.hlsMaster?.key, 'vod/clip/master.m3u8');
      assert.deepEqual(read.output?.timings, wireOutput.timings);
      assert.equal(read.callback?.nextAttemptAt, 'T1');
      // The compare-and-set matches the stored text, in the stored casing.
      const next = { ...read.callback!, nextAttemptAt: 'T2' };
      assert.equal(await queue.claimCallback(task.id, read.callback!, next), true);
      assert.equal((await queue.get(task.id))?.callback?.nextAttemptAt, 'T2');
      assert.deepEqual(toStatusDocument(read).output?.audio_tracks, wireOutput.audio_tracks);
    } finally {
      await queue.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
