import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { playlistBitrates } from '../../src/pipeline/hls-bandwidth.js';

describe('HLS peak and average bit rates (RFC 8216 4.3.4.2)', () => {
  const kB = 1000;
  test('the short last segment counts with the one before it', () => {
    const rates = playlistBitrates(
      [
        { bytes: 400 * kB, duration: 4 },
        { bytes: 400 * kB, duration: 4 },
        { bytes: 300 * kB, duration: 1.3 },
      ],
      4,
    );
    // 1.3 s alone is under half the target duration; with the segment before it, 5.3 s at 700 kB.
    assert.equal(Math.round(rates.peak), Math.round((700 * kB * 8) / 5.3));
    assert.equal(Math.round(rates.average), Math.round((1100 * kB * 8) / 9.3));
  });
  test('runs longer than 1.5 × the target do not dilute the peak; a clip too short for any run is its average', () => {
    const steady = playlistBitrates(
      [
        { bytes: 100 * kB, duration: 4 },
        { bytes: 900 * kB, duration: 4 },
        { bytes: 100 * kB, duration: 4 },
      ],
      4,
    );
    assert.equal(steady.peak, (900 * kB * 8) / 4);
    const tiny = playlistBitrates([{ bytes: 50 * kB, duration: 1 }], 4);
    assert.equal(tiny.peak, tiny.average);
    assert.equal(tiny.average, 50 * kB * 8);
  });
});
