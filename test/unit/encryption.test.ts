import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import {
  EncryptionInputError,
  keyLabelFor,
  parseEncryption,
  resolveEncryption,
} from '../../src/domain/encryption.js';
import { requestHash, requestWithoutKeys } from '../../src/domain/task.js';
import { assertEveryStreamHasAKey, encryptionArgs } from '../../src/pipeline/packager-encryption.js';

const hex = () => randomBytes(16).toString('hex');

describe('encryption options', () => {
  test('labels: audio, and video by its short side (sd < 720 ≤ hd < 2160 ≤ uhd)', () => {
    assert.equal(keyLabelFor('audio'), 'audio');
    assert.equal(keyLabelFor({ width: 1280, height: 718 }), 'sd');
    assert.equal(keyLabelFor({ width: 720, height: 1280 }), 'hd');
    assert.equal(keyLabelFor({ width: 3840, height: 2160 }), 'uhd');
  });

  test('a request without keys takes the server’s, with its own scheme and systems', () => {
    const server = parseEncryption({
      key_id: hex(),
      key: hex().toUpperCase(),
      protection_systems: ['widevine'],
    });
    assert.equal(server.key, server.key!.toLowerCase(), 'hex is kept in lower case');
    const spec = resolveEncryption(parseEncryption({ protection_systems: ['playready'] }), server)!;
    assert.deepEqual(spec.keys, [{ label: 'default', keyId: server.keyId, key: server.key }]);
    assert.deepEqual(spec.systems, ['playready']);
    assert.equal(spec.scheme, 'cbcs');
    assert.throws(() => resolveEncryption({}, undefined), /no ENCRYPTION_KEYS_FILE/);
  });

  test('a cbcs IV has 16 bytes; a key ID given twice needs the same key', () => {
    const id = hex();
    assert.throws(() => parseEncryption({ key_id: hex(), key: hex(), iv: 'a'.repeat(16) }), /iv must be 32/);
    assert.ok(parseEncryption({ scheme: 'cenc', key_id: hex(), key: hex(), iv: 'a'.repeat(16) }));
    assert.throws(
      () => parseEncryption({ key_id: id, key: hex(), keys: [{ label: 'audio', key_id: id, key: hex() }] }),
      (err: Error) => err instanceof EncryptionInputError && /keys\[0\]\.key_id/.test(err.message),
    );
  });

  test('an ended task’s request keeps key IDs, not keys; the hash still tells keys apart', () => {
    const a = { videoFilename: 'a.mp4', encryption: parseEncryption({ key_id: hex(), key: hex() }) };
    const b = { ...a, encryption: { ...a.encryption, key: hex() } };
    assert.notEqual(requestHash(a), requestHash(b));
    const erased = requestWithoutKeys(a);
    assert.deepEqual(erased.encryption, { keyId: a.encryption.keyId });
    assert.ok(a.encryption.key, 'the original is not changed');
  });

  test('per-label keys without a default key refuse a stream whose label has none', () => {
    const spec = resolveEncryption(parseEncryption({ keys: [{ label: 'sd', key_id: hex(), key: hex() }] }))!;
    assert.doesNotThrow(() =>
      assertEveryStreamHasAKey(spec, [{ name: 'video_360p', width: 640, height: 360 }]),
    );
    assert.throws(
      () => assertEveryStreamHasAKey(spec, ['audio']),
      /no key for the label "audio" \(the audio\)/,
    );
  });
});

describe('the packager’s key file', () => {
  test('is 0600 in the private directory, holds the keys, and the arguments do not', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-keys-'));
    try {
      const spec = resolveEncryption(
        parseEncryption({ key_id: hex(), key: hex(), keys: [{ label: 'audio', key_id: hex(), key: hex() }] }),
      )!;
      const { args, cleanup } = await encryptionArgs({ spec, keysDir: dir });
      const [file] = await readdir(dir);
      const full = path.join(dir, file!);
      assert.equal((await stat(full)).mode & 0o777, 0o600);
      const text = await readFile(full, 'utf8');
      for (const k of spec.keys) {
        assert.ok(text.includes(k.key));
        assert.ok(!args.join(' ').includes(k.key), 'no key among the arguments');
      }
      assert.match(text, /label=:key_id=.*,label=AUDIO:key_id=/);
      assert.deepEqual(args.slice(0, 2), ['--flagfile', full]);
      assert.ok(args.includes('--clear_lead') && args[args.indexOf('--clear_lead') + 1] === '0');
      await cleanup();
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ENCRYPTION_KEYS_FILE', () => {
  test('refused when others can read it or it is not valid, without quoting it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dvc-keysfile-'));
    try {
      const key = hex();
      const file = path.join(dir, 'keys.json');
      const env = { ENCRYPTION_KEYS_FILE: file, STATE_DIR: dir };
      await writeFile(file, JSON.stringify({ key_id: hex(), key }), { mode: 0o640 });
      assert.throws(() => loadConfig(env), /can be read or written by other users \(mode 640\)/);
      await rm(file);
      await writeFile(file, `{"key_id": "${hex()}", "key": "${key}",}`, { mode: 0o600 });
      assert.throws(
        () => loadConfig(env),
        (err: Error) => /it is not valid JSON/.test(err.message) && !err.message.includes(key),
      );
      await writeFile(file, JSON.stringify({ key_id: hex(), key: key.slice(2) }));
      assert.throws(
        () => loadConfig(env),
        (err: Error) =>
          /ENCRYPTION_KEYS_FILE\.key must be 32 hex/.test(err.message) && !err.message.includes(key.slice(2)),
      );
      await writeFile(file, JSON.stringify({ key_id: hex(), key }));
      assert.equal(loadConfig(env).encryption.serverKeys?.key, key);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
