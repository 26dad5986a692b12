import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { presentationEnd } from '../../src/pipeline/text-tracks.js';
import { planEncode } from '../../src/pipeline/plan.js';
import { clipCues, decodeSubtitleBytes, parseSubtitles, toWebVtt } from '../../src/pipeline/subtitles.js';
import { mediaInfo, testEncodeSettings } from '../helpers/media-info.js';

describe('subtitle files', () => {
  test('SRT with a byte-order mark and CRLF, ASS overrides and font tags dropped, overlaps kept', () => {
    const srt = Buffer.from(
      '\uFEFF1\r\n00:00:01,000 --> 00:00:02,500\r\n{\\an8}<font color="red">Hi</font> & <i>bye</i>\r\n\r\n' +
        '2\r\n00:00:02,000 --> 00:00:03,000\r\nOverlap\r\n',
    );
    const cues = parseSubtitles(decodeSubtitleBytes(srt));
    assert.deepEqual(cues, [
      { start: 1, end: 2.5, text: 'Hi &amp; <i>bye</i>' },
      { start: 2, end: 3, text: 'Overlap' },
    ]);
    assert.equal(
      toWebVtt(cues),
      'WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHi &amp; <i>bye</i>\n\n00:00:02.000 --> 00:00:03.000\nOverlap\n',
    );
  });
  test('WebVTT with a header, NOTE and short timestamps; Latin-1 read as such', () => {
    const vtt = 'WEBVTT - film\n\nNOTE made by hand\n\nid\n01:02.5 --> 01:04.000 align:start\nCaf\xe9\n';
    assert.deepEqual(parseSubtitles(decodeSubtitleBytes(Buffer.from(vtt, 'latin1'))), [
      { start: 62.5, end: 64, text: 'Café' },
    ]);
  });
  test('UTF-16 with its byte-order mark (little- and big-endian) is read; one that does not decode is refused', () => {
    const srt = '\uFEFF1\r\n00:00:01,000 --> 00:00:02,500\r\nÇa va ? 日本\r\n';
    const le = Buffer.from(srt, 'utf16le');
    const be = Buffer.from(le).swap16();
    for (const bytes of [le, be]) {
      assert.deepEqual(parseSubtitles(decodeSubtitleBytes(bytes)), [
        { start: 1, end: 2.5, text: 'Ça va ? 日本' },
      ]);
    }
    assert.throws(() => decodeSubtitleBytes(Buffer.concat([le, Buffer.from([0x00, 0xd8])])), /UTF-16LE/);
    assert.throws(() => decodeSubtitleBytes(Buffer.from('\uFEFF\u0001\u0002x', 'utf16le')), /control/);
  });
  test('cues past the end are clipped, those after it dropped', () => {
    const cues = [
      { start: 1, end: 3, text: 'a' },
      { start: 3, end: 9, text: 'b' },
      { start: 5, end: 6, text: 'c' },
    ];
    assert.deepEqual(clipCues(cues, 4), [
      { start: 1, end: 3, text: 'a' },
      { start: 3, end: 4, text: 'b' },
    ]);
  });
  test("cues are clipped at the video's end, not the container's (a Matroska file lasts to its last cue)", () => {
    const mkv = { ...mediaInfo(640, 360), duration: 9, startTime: 0.014 };
    assert.equal(presentationEnd({ ...mkv, video: { ...mkv.video, duration: 5, startTime: 0.014 } }, {}), 5);
    assert.equal(presentationEnd({ ...mkv, video: { ...mkv.video, duration: 5 } }, { holdLastFrame: 2 }), 7);
    assert.equal(presentationEnd(mkv, {}), 9, 'a video stream that does not say: the container');
  });
  test('what is not subtitles says why', () => {
    assert.throws(() => decodeSubtitleBytes(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1])), /binary/);
    assert.throws(() => parseSubtitles('just some notes\nabout the film\n'), /not a cue/);
    assert.throws(
      () => parseSubtitles('1\n00:00:01,000 --> 00:0x:02,000\nHi\n'),
      /timestamps of cue 1 do not parse/,
    );
    assert.throws(() => parseSubtitles('WEBVTT\n'), /no cues/);
  });
  test('picture subtitles are skipped with a reason; text ones and request files become text tracks', () => {
    const media = {
      ...mediaInfo(640, 360),
      subtitles: [
        { index: 2, codec: 'hdmv_pgs_subtitle', forced: false },
        { index: 3, codec: 'mov_text', language: 'eng', forced: true },
      ],
    };
    const plan = planEncode(media, {
      ...testEncodeSettings,
      subtitles: [{ filename: 'film.fr.srt', language: 'fra', label: 'Français, "SDH"' }],
    });
    assert.deepEqual(plan.skippedSubtitles, [
      { index: 2, codec: 'hdmv_pgs_subtitle', reason: 'a picture-based format, not text' },
    ]);
    assert.deepEqual(
      plan.textTracks.map((t) => [t.name, t.language, t.label, t.forced]),
      [
        ['text_1', 'en', 'English (forced)', true],
        ['text_2', 'fr', 'Français SDH', false],
      ],
    );
  });
});
