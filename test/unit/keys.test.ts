import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertSafeKey, outputPrefixFor } from '../../src/storage/keys.js';

describe('storage keys', () => {
  test('plain relative keys are accepted', () => {
    for (const k of [
      'example.mp4',
      'uploads/2024/clip one.mov',
      'a-b_c.d/e.webm',
      'vidéo.mp4',
      '%2e%2e/x.mp4',
    ]) {
      assert.doesNotThrow(() => assertSafeKey(k), k);
    }
  });
  test('keys that could leave the root or confuse tools are refused', () => {
    for (const k of [
      '',
      '/etc/passwd',
      '../x.mp4',
      'a/../../x.mp4',
      'a/./b.mp4',
      'a//b.mp4',
      'a\\b.mp4',
      'x\u0000.mp4',
      'x\n.mp4',
      'x\u202e4pm.exe',
      'x\u200b.mp4',
      'a'.repeat(256) + '.mp4',
      'a/'.repeat(600),
    ]) {
      assert.throws(() => assertSafeKey(k), `${JSON.stringify(k)} must be refused`);
    }
    assert.throws(() => assertSafeKey(42));
  });
  test('output prefix drops the extension and keeps folders, below OUTPUT_PREFIX', () => {
    assert.equal(outputPrefixFor('example.mp4'), 'example');
    assert.equal(outputPrefixFor('uploads/2024/clip.v2.mov'), 'uploads/2024/clip.v2');
    assert.equal(outputPrefixFor('noext'), 'noext');
    assert.equal(outputPrefixFor('.hidden'), '.hidden');
    // A stem of dots would be the directory itself or its parent: the whole name is kept.
    assert.equal(outputPrefixFor('..mp4'), '..mp4');
    assert.equal(outputPrefixFor('a/...mp4'), 'a/...mp4');
    assert.equal(outputPrefixFor('a/.b.mp4'), 'a/.b');
    assert.equal(outputPrefixFor('a/b.mp4', '/streams/'), 'streams/a/b');
  });
  test('a name in decomposed Unicode (macOS: e + accent) is a key as it is; its package place is composed', () => {
    const decomposed = 'cafe\u0301/re\u0301sume\u0301.mov';
    assert.doesNotThrow(() => assertSafeKey(decomposed));
    assert.equal(outputPrefixFor(decomposed), 'caf\u00e9/r\u00e9sum\u00e9');
    assert.equal(outputPrefixFor(decomposed), outputPrefixFor(decomposed.normalize('NFC')));
  });
});
