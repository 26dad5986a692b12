import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Deterministic garbage, so a failing corpus item fails the same way on every run. */
export function garbage(length: number, seed = 1): Buffer {
  const buf = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

async function ffmpeg(dir: string, name: string, args: string[]): Promise<Buffer> {
  const file = path.join(dir, name);
  await run('ffmpeg', ['-v', 'error', '-y', ...args, file]);
  return readFile(file);
}

/** Offset of the first `needle` in `buf`, or a thrown error naming what is missing. */
function find(buf: Buffer, needle: Buffer | string, what: string): number {
  const i = buf.indexOf(needle);
  if (i < 0) throw new Error(`test media: ${what} not found`);
  return i;
}

/** A tiny, valid clip: 160x90, 1 s, 25 fps, with audio; moov first (`faststart`) or last. */
export async function tinyClip(dir: string, name: string, faststart: boolean, seconds = 1): Promise<Buffer> {
  return ffmpeg(dir, name, [
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=160x90:rate=25:duration=${seconds}`,
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-pix_fmt',
    'yuv420p',
    '-c:a',
    'aac',
    ...(faststart ? ['-movflags', '+faststart'] : []),
  ]);
}

/**
 * 1 s of video and 6 s of audio (a recording whose camera stopped first): the container lasts 6 s. In MP4 the
 * video stream states its own duration; in Matroska (by the name's extension) nothing does.
 */
export async function shortVideoLongAudio(dir: string, name: string): Promise<Buffer> {
  return ffmpeg(dir, name, [
    ...['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=1'],
    ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=6'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac'],
  ]);
}

/**
 * The broken and hostile media files of the corpus, made in `dir` from FFmpeg's test sources and byte
 * patches. Keys are the names they are uploaded under.
 */
export async function makeHostileMedia(dir: string): Promise<Record<string, Buffer>> {
  const moovLast = await tinyClip(dir, 'moov-last.mp4', false);
  const moovFirst = await tinyClip(dir, 'moov-first.mp4', true);

  // Moov at the end, upload cut before it: no index at all.
  const noMoov = moovLast.subarray(0, find(moovLast, 'moov', 'moov') - 4);
  // Moov first, upload cut halfway through mdat: the index promises samples the file does not hold.
  const mdatCut = moovFirst.subarray(0, Math.floor(moovFirst.length * 0.6));
  // Valid container, every sample byte after the first few replaced by garbage.
  const corrupt = Buffer.from(moovFirst);
  const mdat = find(corrupt, 'mdat', 'mdat') + 4;
  garbage(corrupt.length - mdat - 64, 7).copy(corrupt, mdat + 64);

  const png = await ffmpeg(dir, 'still.png', ['-f', 'lavfi', '-i', 'color=c=red:s=64x64', '-frames:v', '1']);
  const audioOnly = await ffmpeg(dir, 'audio.m4a', ['-f', 'lavfi', '-i', 'sine=duration=1', '-c:a', 'aac']);
  const fast = await ffmpeg(dir, 'fast.mp4', [
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=64x64:rate=1000:duration=0.1',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
  ]);

  // Raw video in AVI: the picture size is only what the headers say, so patch them to 16000x16000.
  const huge = Buffer.from(
    await ffmpeg(dir, 'raw.avi', [
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=16x16:rate=10:duration=1',
      '-c:v',
      'rawvideo',
      '-pix_fmt',
      'yuv420p',
    ]),
  );
  const avih = find(huge, 'avih', 'avih') + 8;
  huge.writeUInt32LE(16000, avih + 32);
  huge.writeUInt32LE(16000, avih + 36);
  const strf = find(huge, 'strf', 'strf') + 8;
  huge.writeInt32LE(16000, strf + 4);
  huge.writeInt32LE(16000, strf + 8);

  const mkv = await ffmpeg(dir, 'base.mkv', [
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=64x64:rate=10:duration=1',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
  ]);
  // Matroska Info/Duration (ID 0x4489) claims 10^12 ms, about 31 years.
  const longClaim = Buffer.from(mkv);
  const dur = find(longClaim, Buffer.from([0x44, 0x89]), 'Duration');
  if (longClaim[dur + 2] === 0x88) longClaim.writeDoubleBE(1e12, dur + 3);
  else longClaim.writeFloatBE(1e12, dur + 3);
  // The segment's size made "unknown" (as a live writer leaves it), so cut-off data is not a truncation.
  const segment = find(mkv, Buffer.from([0x18, 0x53, 0x80, 0x67]), 'Segment');
  if (mkv[segment + 4] !== 0x01) throw new Error('test media: expected an 8-byte segment size');
  const open = Buffer.from(mkv);
  open.fill(0xff, segment + 5, segment + 12);
  const cluster = find(open, Buffer.from([0x1f, 0x43, 0xb6, 0x75]), 'Cluster');
  const unknownSize = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  // Headers and tracks intact, then a cluster claiming 64 GiB followed by garbage.
  const clusterBomb = Buffer.concat([
    open.subarray(0, cluster + 4),
    Buffer.from([0x01, 0x00, 0x00, 0x0f, 0xff, 0xff, 0xff, 0xff]),
    garbage(20_000, 3),
  ]);
  // EBML header, then 50 000 nested elements of unknown size and nothing inside.
  const nested = Buffer.concat([
    mkv.subarray(0, segment),
    Buffer.from([0x18, 0x53, 0x80, 0x67]),
    unknownSize,
    Buffer.concat(
      Array.from({ length: 50_000 }, () =>
        Buffer.concat([Buffer.from([0x1f, 0x43, 0xb6, 0x75]), unknownSize]),
      ),
    ),
  ]);
  // A block whose Xiph lacing claims hundreds of frames of 255+ bytes each in a few bytes.
  const lacing = Buffer.concat([
    open.subarray(0, cluster),
    Buffer.from([0x1f, 0x43, 0xb6, 0x75]),
    unknownSize,
    Buffer.from([0xe7, 0x81, 0x00, 0xa3, 0x10, 0x00, 0x10, 0x00, 0x81, 0x00, 0x00, 0x86, 0xff]),
    Buffer.alloc(300, 0xff),
    garbage(4000, 5),
  ]);

  // AVI as old cameras write it (MPEG-4 Part 2), to be cut short: its RIFF chunk says how long it should be.
  const avi = await ffmpeg(dir, 'base.avi', [
    ...['-f', 'lavfi', '-i', 'testsrc2=size=64x64:rate=10:duration=2'],
    ...['-c:v', 'mpeg4'],
  ]);

  // YUV4MPEG: frame rate 100000/1 in a header FFmpeg reads without complaint.
  const y4mHeader = 'YUV4MPEG2 W64 H64 F100000:1 Ip A1:1 C420jpeg\n';
  const frame = Buffer.concat([Buffer.from('FRAME\n'), Buffer.alloc(64 * 64 * 1.5, 0x80)]);
  const y4mFast = Buffer.concat([Buffer.from(y4mHeader), ...Array.from({ length: 10 }, () => frame)]);

  return {
    'text.mp4': Buffer.from('This is a text file, not a video.\n'.repeat(200)),
    'image.png': png,
    'image-named.mp4': png,
    'document.pdf': Buffer.from(
      '%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n',
      'latin1',
    ),
    'empty.mp4': Buffer.alloc(0),
    'random.mp4': garbage(256 * 1024, 11),
    'ftyp-only.mp4': moovFirst.subarray(0, moovFirst.readUInt32BE(0)),
    'no-moov.mp4': noMoov,
    'mdat-cut.mp4': mdatCut,
    'corrupt-video.mp4': corrupt,
    'audio-only.m4a': audioOnly,
    'huge-16000x16000.avi': huge,
    'fast-1000fps.mp4': fast,
    'fast-100000fps.y4m': y4mFast,
    'long-claim.mkv': longClaim,
    'cluster-bomb.mkv': clusterBomb,
    'nested-unknown-size.mkv': nested,
    'bad-lacing.mkv': lacing,
    'mkv-cut.mkv': mkv.subarray(0, Math.floor(mkv.length * 0.7)),
    'avi-whole.avi': avi,
    'avi-cut.avi': avi.subarray(0, Math.floor(avi.length * 0.7)),
  };
}
